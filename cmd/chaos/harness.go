package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync/internal/reqlog"
)

// chaosDB is the database the run creates in its private PostgreSQL.
const chaosDB = "tasksync_chaos"

// harness is one run: the instances, the clients and every count.
type harness struct {
	cfg    config
	t0     time.Time
	runTag string
	secret string
	dbURL  string

	instances   [2]*instance
	tokens      map[string]string
	users       []string // writing users; readers follow them
	poisonUsers []string
	start       map[string]userStart
	writers     []*writer
	readers     []*reader
	faults      []faultRecord

	nextN                                 atomic.Int64
	sent, acked, replayed, resent         atomic.Int64
	framesSent, staleAnswers              atomic.Int64
	requestTimeouts                       atomic.Int64
	readerGaps, readerMissing, readerDups atomic.Int64
	snapshots, snapshotPages, churns      atomic.Int64
	retried, refused, anomalies, closes   counters
	dialErrors, helloNotFirst, sockets    counters
	framesBeforeHello                     counters
	poisoned                              poisonStats

	phase     atomic.Value // string: what the run is doing now, for notes
	notesMu   sync.Mutex
	notes     []string
	noteCount map[string]int

	pidMu   sync.Mutex
	pidFile *os.File
}

// faultRecord is what happened at one fault.
type faultRecord struct {
	Name   string  `json:"name"`
	AtS    float64 `json:"at_s"`
	TookS  float64 `json:"took_s"`
	Note   string  `json:"note"`
	Failed string  `json:"failed,omitempty"`
}

func newHarness(cfg config) (*harness, error) {
	var b [36]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	h := &harness{
		cfg: cfg, t0: time.Now(),
		runTag: strings.ToLower(reqlog.NewID()[:8]),
		secret: base64.RawURLEncoding.EncodeToString(b[:]),
		tokens: map[string]string{},
	}
	h.phase.Store("start")
	for i, name := range []string{"a", "b"} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		h.instances[i] = &instance{name: name, port: port, h: h}
	}
	f, err := os.Create(filepath.Join(cfg.Out, "pids"))
	if err != nil {
		return nil, err
	}
	h.pidFile = f
	return h, nil
}

func (h *harness) since() float64 { return time.Since(h.t0).Seconds() }

// maxNotes bounds the examples kept of each kind of broken promise seen on
// sockets.
const maxNotes = 10

// note keeps an example of a broken promise of some kind, with when and
// during what.
func (h *harness) note(kind, format string, args ...any) {
	h.notesMu.Lock()
	defer h.notesMu.Unlock()
	if h.noteCount == nil {
		h.noteCount = map[string]int{}
	}
	if h.noteCount[kind]++; h.noteCount[kind] <= maxNotes {
		phase, _ := h.phase.Load().(string)
		h.notes = append(h.notes, fmt.Sprintf("+%.1fs (%s) %s", h.since(), phase, fmt.Sprintf(format, args...)))
	}
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos +%5.1fs: %s\n", h.since(), fmt.Sprintf(format, args...))
}

// recordPID notes every server process started, so that scripts/chaos.sh
// can stop leftovers by pid if this program itself is killed.
func (h *harness) recordPID(line string) {
	h.pidMu.Lock()
	defer h.pidMu.Unlock()
	_, _ = h.pidFile.WriteString(line)
}

// createDatabase creates the database and applies the migrations.
func (h *harness) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, h.cfg.AdminURL)
	if err != nil {
		return fmt.Errorf("connect to the private PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chaosDB); err != nil {
		return fmt.Errorf("drop database: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+chaosDB); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(h.cfg.AdminURL)
	if err != nil {
		return fmt.Errorf("parse --database-admin-url: %w", err)
	}
	u.Path = "/" + chaosDB
	h.dbURL = u.String()
	_, err = h.serverCommand(ctx, "migrate")
	return err
}

// setup mints the tokens of the fault run's users and seeds their tasks.
func (h *harness) setup(ctx context.Context) error {
	for i := range h.cfg.Users {
		h.users = append(h.users, fmt.Sprintf("chaos-%s-u%d", h.runTag, i))
	}
	h.poisonUsers = []string{"chaos-" + h.runTag + "-poison0", "chaos-" + h.runTag + "-poison1"}
	for _, u := range append(append([]string(nil), h.users...), h.poisonUsers...) {
		tok, err := h.serverCommand(ctx, "token", u, "--ttl", "2h")
		if err != nil {
			return err
		}
		h.tokens[u] = tok
	}
	return h.seedTasks(ctx)
}

// userStart is a user's tasks and seq before the readers connect: what a
// device that synced earlier would hold.
type userStart struct {
	tasks map[int64]taskView
	seq   int64
}

// seedTasks gives each writing user --seed-tasks tasks, inserted with plain
// SQL (the triggers log them like any other change), so that a snapshot
// takes more than one page; and notes where each user starts.
func (h *harness) seedTasks(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, h.dbURL)
	if err != nil {
		return fmt.Errorf("connect to seed tasks: %w", err)
	}
	defer pool.Close()
	h.start = map[string]userStart{}
	for _, u := range h.users {
		if h.cfg.SeedTasks > 0 {
			if _, err := pool.Exec(ctx, `INSERT INTO tasks (user_id, title, description, priority, tags)
				SELECT $1, 'seed ' || g, 'inserted by chaos with plain SQL', 'low', '{seed}'
				FROM generate_series(1, $2) AS g`, u, h.cfg.SeedTasks); err != nil {
				return fmt.Errorf("seed the tasks of %s: %w", u, err)
			}
		}
		tasks, err := h.loadTasks(ctx, pool, u)
		if err != nil {
			return err
		}
		var seq int64
		if err := pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM user_seqs WHERE user_id = $1", u).Scan(&seq); err != nil {
			return fmt.Errorf("read the seq of %s: %w", u, err)
		}
		h.start[u] = userStart{tasks: tasks, seq: seq}
	}
	return nil
}

// run is the whole run: the database, the fault run, then the scenarios.
// A result comes back with an error when a scenario could not run after
// the fault run completed, so that the table still shows what was found.
func (h *harness) run(ctx context.Context) (*result, error) {
	defer h.pidFile.Close()
	if err := h.createDatabase(ctx); err != nil {
		return nil, err
	}
	res := h.newResult()
	if h.cfg.FaultRun {
		var err error
		if res, err = h.faultRun(ctx); err != nil {
			return nil, err
		}
	}
	err := h.runScenarios(ctx, res)
	res.Seconds = round1(h.since())
	return res, err
}

// faultRun is the load with faults: set-up, load, faults, drain,
// verification.
func (h *harness) faultRun(ctx context.Context) (*result, error) {
	h.logf("run %s: instances a :%d and b :%d, %d writers at %.0f/s, %d+%d readers, faults %s; logs in %s",
		h.runTag, h.instances[0].port, h.instances[1].port, h.cfg.Users, h.cfg.Rate,
		h.cfg.Users*h.cfg.Readers, h.cfg.Crowd, strings.Join(h.cfg.Faults, " "), h.cfg.Out)
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	for _, in := range h.instances {
		defer in.stop()
		if err := in.start(ctx); err != nil {
			return nil, err
		}
	}

	// Deferred calls run last first: the load stops, then its goroutines
	// are waited for, then the instances stop.
	var wg sync.WaitGroup
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	goOwned := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}

	goOwned(func() { h.sampleMemory(loadCtx) })

	// Readers first, from where each user starts, so that they see every
	// change; the crowd sits on instance b, which SIGTERM will close.
	newReader := func(u string, inst int, crowd bool) *reader {
		st := h.start[u]
		r := &reader{h: h, user: u, inst: inst, crowd: crowd, tasks: maps.Clone(st.tasks)}
		r.lastSeq.Store(st.seq)
		return r
	}
	for i, u := range h.users {
		for k := range h.cfg.Readers {
			h.readers = append(h.readers, newReader(u, (i+k)%2, false))
		}
	}
	for i := range h.cfg.Crowd {
		h.readers = append(h.readers, newReader(h.users[i%len(h.users)], 1, true))
	}
	for i, r := range h.readers {
		goOwned(func() { r.run(loadCtx) })
		if i%32 == 31 {
			sleepCtx(ctx, 20*time.Millisecond) // do not open hundreds at the same instant
		}
	}
	h.waitFor(ctx, time.Minute, "every reader connected", func() bool { return h.readersConnected() == len(h.readers) })
	h.logf("%d reader sockets open", h.readersConnected())

	for i, u := range h.users {
		w := newWriter(h, i, u, h.cfg.Seed)
		h.writers = append(h.writers, w)
		goOwned(func() { w.connect(loadCtx) })
		goOwned(func() { w.pump(loadCtx) })
	}
	poisonCtx, stopPoison := context.WithCancel(loadCtx)
	defer stopPoison()
	if h.wants(faultPoison) {
		goOwned(func() { h.poison(poisonCtx) })
	}
	goOwned(func() { h.progress(loadCtx) })

	// Faults, one after the other, with load all along.
	h.phase.Store("warm-up")
	sleepCtx(ctx, h.cfg.Warmup)
	for _, name := range h.cfg.Faults {
		if name == faultPoison || ctx.Err() != nil {
			continue
		}
		h.phase.Store("during " + name)
		if err := h.fault(ctx, name); err != nil {
			return nil, err
		}
		h.phase.Store("after " + name)
		sleepCtx(ctx, h.cfg.Settle)
	}
	h.phase.Store("drain")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Quiescence: no new mutations; every pending one answered; every
	// reader at the user's last seq.
	stopPoison()
	for _, w := range h.writers {
		w.stop()
	}
	h.logf("faults done; waiting for every mutation to be answered (at most %s)", h.cfg.Drain)
	h.waitFor(ctx, h.cfg.Drain, "every mutation answered", func() bool { return h.pendingCount() == 0 })
	res, err := h.verify(ctx)
	if err != nil {
		return nil, err
	}
	stopLoad()
	wg.Wait()
	for _, w := range h.writers {
		w.restWG.Wait()
	}
	for _, in := range h.instances {
		in.sampleMemory()
		in.sampleCounters()
		in.stop()
	}
	h.finish(res)
	return res, nil
}

func (h *harness) wants(fault string) bool {
	for _, f := range h.cfg.Faults {
		if f == fault {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or d has passed; the caller's checks
// afterwards report what did not happen (this never fails on its own).
func (h *harness) waitFor(ctx context.Context, d time.Duration, what string, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			h.logf("gave up waiting after %s: %s", d, what)
			return false
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return false
		}
	}
	return true
}

func (h *harness) readersConnected() int {
	n := 0
	for _, r := range h.readers {
		if r.connected.Load() != 0 {
			n++
		}
	}
	return n
}

func (h *harness) readersOn(inst int) int {
	n := 0
	for _, r := range h.readers {
		if int(r.connected.Load()) == inst+1 {
			n++
		}
	}
	return n
}

func (h *harness) pendingCount() int {
	n := 0
	for _, w := range h.writers {
		n += w.pendingCount()
	}
	return n
}

// sampleMemory keeps each instance's peak resident size (VmHWM) up to date,
// since a killed process can no longer be asked.
func (h *harness) sampleMemory(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		for _, in := range h.instances {
			in.sampleMemory()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// progress prints one line every 5 s, to see a run that stalls.
func (h *harness) progress(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.logf("sent %d, acked %d, pending %d, resent %d | reader sockets on a %d, b %d (of %d) | retried %d, poison %d",
			h.sent.Load(), h.acked.Load(), h.pendingCount(), h.resent.Load(),
			h.readersOn(0), h.readersOn(1), len(h.readers), h.retried.total(), h.poisonSent())
	}
}

func (h *harness) poisonSent() int {
	h.poisoned.mu.Lock()
	defer h.poisoned.mu.Unlock()
	n := 0
	for _, v := range h.poisoned.sent {
		n += v
	}
	return n
}

// fault carries out one fault and waits until the system is whole again.
func (h *harness) fault(ctx context.Context, name string) error {
	rec := faultRecord{Name: name, AtS: round1(h.since())}
	start := time.Now()
	a, b := h.instances[0], h.instances[1]
	h.logf("fault %s", name)
	var err error
	switch name {
	case faultKill9:
		var took time.Duration
		took, _, _, err = a.signal(syscall.SIGKILL, 10*time.Second)
		if err == nil {
			sleepCtx(ctx, h.cfg.Down)
			err = a.start(ctx)
			rec.Note = fmt.Sprintf("SIGKILL instance a (gone in %.2fs), down %s, ready again %.1fs after the kill", took.Seconds(), h.cfg.Down, time.Since(start).Seconds())
		}
	case faultPGRestart, faultPGCrash:
		mode := "fast"
		if name == faultPGCrash {
			mode = "immediate"
		}
		err = h.runHook(ctx, "pg-restart", mode)
		rec.Note = fmt.Sprintf("pg_ctl restart -m %s took %.1fs", mode, time.Since(start).Seconds())
	case faultRedisKill:
		if err = h.runHook(ctx, "redis-kill"); err == nil {
			sleepCtx(ctx, h.cfg.Down)
			err = h.runHook(ctx, "redis-start")
			rec.Note = fmt.Sprintf("SIGKILL Redis, down %s, back %.1fs after the kill", h.cfg.Down, time.Since(start).Seconds())
		}
	case faultSIGTERM:
		onB := h.readersOn(1)
		took, forced, exit, serr := b.signal(syscall.SIGTERM, 60*time.Second)
		if err = serr; err == nil {
			rec.Note = fmt.Sprintf("SIGTERM instance b with %d reader sockets on it: exited in %.1fs (%s)", onB, took.Seconds(), exit)
			if forced {
				rec.Failed = "instance b did not exit within 60s of SIGTERM and was killed"
			}
			err = b.start(ctx)
		}
	default:
		err = fmt.Errorf("unknown fault %q", name)
	}
	rec.TookS = round1(time.Since(start).Seconds())
	h.faults = append(h.faults, rec)
	if err != nil {
		return fmt.Errorf("fault %s: %w", name, err)
	}
	h.logf("fault %s done: %s", name, rec.Note)
	return nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
