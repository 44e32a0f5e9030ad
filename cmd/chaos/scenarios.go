package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Scenarios are issue 9's repros of defects 1 to 5, run from outside after
// the fault run, each against server processes of its own (started fresh,
// with the settings the repro needs) on the run's private PostgreSQL and
// Redis. Each checks one promise and fails the run only when the promise
// is broken: figures that depend on the machine's speed (close times,
// memory, pong delays) are printed, and waits are long, so that a slow
// machine cannot fail a run. They run one after the other: the locked
// table would stall the others, and each measures its own process.
const (
	scenarioFlood    = "snapshot-flood" // row 1: snapshots paged and bounded
	scenarioHello    = "hello-first"    // row 2: hello first, events contiguous, with and without Redis
	scenarioLock     = "locked-table"   // row 3: a request waiting on the database never blocks the reader
	scenarioSlowBody = "slow-bodies"    // row 4: request bodies bounded in time
	scenarioPoison   = "poison-batch"   // row 5: no client input rolls back other users' batches
)

var allScenarios = []string{scenarioFlood, scenarioHello, scenarioLock, scenarioSlowBody, scenarioPoison}

// scenario is one repro: the row, the promise it shows, and how.
type scenario struct {
	row     int
	promise string
	run     func(h *harness, ctx context.Context, sr *scenarioResult) error
}

var scenarios = map[string]scenario{
	scenarioFlood:    {1, "P6: snapshots paged, peak RSS growth < 128 MiB, every socket ends with the exact list", (*harness).scenarioFlood},
	scenarioHello:    {2, "P4, P5: hello first, events contiguous from hello.seq+1 (or since+1), Redis up and down", (*harness).scenarioHello},
	scenarioLock:     {3, "P6, P1: a socket waiting on a locked table stays open; answers match the database", (*harness).scenarioLock},
	scenarioSlowBody: {4, "P6: slow request bodies cut off within HTTP_BODY_TIMEOUT; goroutines back to baseline", (*harness).scenarioSlowBodies},
	scenarioPoison:   {5, "P7: poison frames amid other users' writes: 0 batch reruns, nothing stored", (*harness).scenarioPoisonBatch},
}

// scenarioSizes are the scenarios' knobs (flags; smaller in --quick).
type scenarioSizes struct {
	FloodTasks   int           `json:"flood_tasks"`
	FloodSockets int           `json:"flood_sockets"`
	FloodFor     time.Duration `json:"flood_for"`
	HelloSockets int           `json:"hello_sockets"`
	HelloUsers   int           `json:"hello_users"`
	HelloRate    float64       `json:"hello_rate"`
	LockFor      time.Duration `json:"lock_for"`
	SlowConns    int           `json:"slow_conns"`
	BodyTimeout  time.Duration `json:"body_timeout"` // 0: the server's default
	BatchFor     time.Duration `json:"batch_for"`
	BatchWriters int           `json:"batch_writers"`
}

// scenarioResult is what one scenario found: rows for the table, the
// figures for result.json, and any broken promise.
type scenarioResult struct {
	Name     string         `json:"name"`
	Row      int            `json:"issue_row"`
	Promise  string         `json:"promise"`
	Seconds  float64        `json:"seconds"`
	Rows     []scenarioRow  `json:"rows"`
	Figures  map[string]any `json:"figures"`
	Failures []string       `json:"failures,omitempty"`
	Examples []string       `json:"examples,omitempty"`
	Error    string         `json:"error,omitempty"` // it could not run

	mu sync.Mutex
}

type scenarioRow struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Note  string `json:"note,omitempty"`
}

func (sr *scenarioResult) row(name string, value any, note string) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.Rows = append(sr.Rows, scenarioRow{Name: name, Value: fmt.Sprint(value), Note: note})
}

// figure keeps a number for result.json (docs/RELIABILITY.md quotes them).
func (sr *scenarioResult) figure(key string, v any) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.Figures == nil {
		sr.Figures = map[string]any{}
	}
	sr.Figures[key] = v
}

func (sr *scenarioResult) fail(format string, args ...any) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.Failures = append(sr.Failures, fmt.Sprintf(format, args...))
}

// example keeps one of at most maxNotes examples of what went wrong.
func (sr *scenarioResult) example(format string, args ...any) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if len(sr.Examples) < maxNotes {
		sr.Examples = append(sr.Examples, fmt.Sprintf(format, args...))
	}
}

// runScenarios runs the chosen scenarios one after the other and adds what
// they found to res. The error joins the scenarios that could not run.
func (h *harness) runScenarios(ctx context.Context, res *result) error {
	var errs []error
	for _, name := range h.cfg.Scenarios {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		sc := scenarios[name]
		sr := &scenarioResult{Name: name, Row: sc.row, Promise: sc.promise}
		h.phase.Store("scenario " + name)
		h.logf("scenario %s (issue 9 row %d)", name, sc.row)
		start := time.Now()
		err := sc.run(h, ctx, sr)
		sr.Seconds = round1(time.Since(start).Seconds())
		if err != nil {
			sr.Error = err.Error()
			errs = append(errs, fmt.Errorf("scenario %s: %w", name, err))
			h.logf("scenario %s could not run: %v", name, err)
		} else {
			h.logf("scenario %s done in %.0fs: %d broken promises", name, sr.Seconds, len(sr.Failures))
		}
		res.Scenarios = append(res.Scenarios, sr)
		for _, f := range sr.Failures {
			res.Failures = append(res.Failures, name+": "+f)
		}
	}
	return errors.Join(errs...)
}

// printScenarios writes one table per scenario.
func printScenarios(out io.Writer, res *result) {
	if len(res.Scenarios) == 0 {
		return
	}
	mode := "full"
	if res.Config.Quick {
		mode = "quick"
	}
	took := 0.0
	for _, sr := range res.Scenarios {
		took += sr.Seconds
	}
	fmt.Fprintf(out, "\nscenarios of run %s (%s, %.0f s; issue 9 rows 1-5, each on fresh server processes; the whole run %.0f s)\n", res.Run, mode, took, res.Seconds)
	for _, sr := range res.Scenarios {
		verdict := "PASS"
		switch {
		case sr.Error != "":
			verdict = "DID NOT RUN: " + sr.Error
		case len(sr.Failures) > 0:
			verdict = fmt.Sprintf("FAIL (%d)", len(sr.Failures))
		}
		fmt.Fprintf(out, "\n %s (row %d, %.0f s): %s\n  %s\n", sr.Name, sr.Row, sr.Seconds, verdict, sr.Promise)
		for _, r := range sr.Rows {
			tableRow(out, r.Name, r.Value, r.Note)
		}
	}
}

// scenarioUser names a user of a scenario, unique to the run.
func (h *harness) scenarioUser(name string) string { return "chaos-" + h.runTag + "-" + name }

// mintTokens mints a token for each user, a few at a time.
func (h *harness) mintTokens(ctx context.Context, users ...string) error {
	type minted struct{ user, token string }
	out := make(chan minted, len(users))
	work := make(chan string)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for range 4 {
		wg.Go(func() {
			for u := range work {
				tok, err := h.serverCommand(ctx, "token", u, "--ttl", "2h")
				if err != nil {
					errMu.Lock()
					firstErr = cmpOr(firstErr, err)
					errMu.Unlock()
					continue
				}
				out <- minted{u, tok}
			}
		})
	}
	for _, u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	close(out)
	for m := range out {
		h.tokens[m.user] = m.token
	}
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// scenarioInstance starts a server process for one scenario, with env on
// top of the run's settings, on a free port.
func (h *harness) scenarioInstance(ctx context.Context, name string, env ...string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	in := &instance{name: name, port: port, h: h, env: env}
	if err := in.start(ctx); err != nil {
		in.stop()
		return nil, err
	}
	return in, nil
}

// endInstance stops a scenario's instance and reports its ERROR log lines;
// an instance that exited on its own is a broken promise.
func (h *harness) endInstance(sr *scenarioResult, in *instance) {
	in.stop()
	lines, races, err := in.scanLog()
	if err != nil {
		sr.row("server "+in.name+" ERROR log lines", "?", err.Error())
		return
	}
	note := "reported, not judged"
	if len(lines) > 0 {
		note = "first: " + truncate(lines[0], 160)
	}
	sr.row("server "+in.name+" ERROR log lines", len(lines), note)
	sr.figure("error_log_lines_"+in.name, len(lines))
	in.mu.Lock()
	crashes := slices.Clone(in.crashes)
	in.mu.Unlock()
	for _, c := range crashes {
		sr.fail("%s", c)
	}
	if races > 0 {
		sr.fail("instance %s reported %d data races (see its log)", in.name, races)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// scenarioPool opens a pool on the run's database, with room for the
// writers of hello-first (pgxpool's default is 4 connections on this
// machine's 2 CPUs).
func (h *harness) scenarioPool(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(h.dbURL)
	if err != nil {
		return nil, fmt.Errorf("parse the database URL: %w", err)
	}
	cfg.MaxConns = 24
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the private database: %w", err)
	}
	return pool, nil
}

// userSeq reads a user's current seq (0 for a user with no change yet).
func userSeq(ctx context.Context, pool *pgxpool.Pool, user string) (int64, error) {
	var seq int64
	err := pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM user_seqs WHERE user_id = $1", user).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("read the seq of %s: %w", user, err)
	}
	return seq, nil
}

// durations summarises how long things took: "p50 1.2s, max 3.4s".
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("p50 %s, max %s", roundDur(s[len(s)/2]), roundDur(s[len(s)-1]))
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
