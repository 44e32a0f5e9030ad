package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// result is the report of one run: the table on stdout, and result.json.
type result struct {
	Run     string    `json:"run"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"` // the whole run
	// FaultRunSeconds is the fault run's part of it.
	FaultRunSeconds float64       `json:"fault_run_seconds,omitempty"`
	Config          config        `json:"config"`
	Faults          []faultRecord `json:"faults"`
	Failures        []string      `json:"failures"`

	Mutations struct {
		Sent            int64            `json:"sent"`
		Acked           int64            `json:"acked"`
		Refused         int64            `json:"refused"`
		FramesSent      int64            `json:"frames_sent"`
		Resent          int64            `json:"resent"`
		Replayed        int64            `json:"replayed"`
		REST            int64            `json:"rest"`
		RequestTimeouts int64            `json:"request_timeouts"`
		StaleAnswers    int64            `json:"stale_answers"`
		Retried         map[string]int64 `json:"retried_answers"`
		Refusals        map[string]int64 `json:"refusals,omitempty"`
	} `json:"mutations"`

	Readers struct {
		Readers    int              `json:"readers"`
		Crowd      int              `json:"crowd"`
		Sockets    map[string]int64 `json:"sockets_opened"`
		Gaps       int64            `json:"gaps"`
		Missing    int64            `json:"seqs_skipped"`
		Duplicates int64            `json:"duplicates"`
		Snapshots  int64            `json:"snapshots"`
		SnapPages  int64            `json:"snapshot_pages"`
		Churns     int64            `json:"churns"`
		Closes     map[string]int64 `json:"closes"`
		DialErrors map[string]int64 `json:"dial_errors,omitempty"`
	} `json:"readers"`

	Hello struct {
		NotFirst     map[string]int64 `json:"sockets_hello_not_first"`
		FramesBefore map[string]int64 `json:"frames_before_hello"`
	} `json:"hello"`

	Poison struct {
		Sent         map[string]int            `json:"sent"`
		OK           map[string]int            `json:"ok"`
		Wrong        map[string]map[string]int `json:"wrong,omitempty"`
		Inconclusive map[string]int            `json:"inconclusive,omitempty"`
	} `json:"poison"`

	Verification verification      `json:"verification"`
	Instances    []instanceResult  `json:"instances"`
	Scenarios    []*scenarioResult `json:"scenarios,omitempty"`
	Anomalies    map[string]int64  `json:"anomalies,omitempty"`
	Notes        []string          `json:"socket_notes,omitempty"`
	ErrorLines   []string          `json:"-"`
}

type instanceResult struct {
	Name       string   `json:"name"`
	Starts     int      `json:"starts"`
	MaxRSS     int64    `json:"max_rss_bytes"`
	ErrorLines int      `json:"error_log_lines"`
	DataRaces  int      `json:"data_races,omitempty"`
	Crashes    []string `json:"crashes,omitempty"`
	// Counters are tasksync_* counters of /metrics summed over the
	// starts (read before each signal and at the end).
	Counters map[string]float64 `json:"counters,omitempty"`
}

func (h *harness) newResult() *result {
	return &result{Run: h.runTag, Started: h.t0.UTC(), Config: h.cfg}
}

// finish gathers the counts and decides pass or fail.
func (h *harness) finish(res *result) {
	res.FaultRunSeconds = round1(h.since())
	res.Faults = h.faults
	m := &res.Mutations
	m.Sent, m.Acked, m.FramesSent = h.sent.Load(), h.acked.Load(), h.framesSent.Load()
	m.Resent, m.Replayed = h.resent.Load(), h.replayed.Load()
	m.RequestTimeouts, m.StaleAnswers = h.requestTimeouts.Load(), h.staleAnswers.Load()
	m.Retried, m.Refusals = h.retried.snapshot(), h.refused.snapshot()
	m.Refused = h.refused.total()
	for _, w := range h.writers {
		w.mu.Lock()
		for _, x := range w.muts {
			if x.rest {
				m.REST++
			}
		}
		w.mu.Unlock()
	}
	r := &res.Readers
	r.Readers, r.Crowd = len(h.readers)-h.cfg.Crowd, h.cfg.Crowd
	r.Sockets = h.sockets.snapshot()
	r.Gaps, r.Missing, r.Duplicates = h.readerGaps.Load(), h.readerMissing.Load(), h.readerDups.Load()
	r.Snapshots, r.SnapPages, r.Churns = h.snapshots.Load(), h.snapshotPages.Load(), h.churns.Load()
	r.Closes, r.DialErrors = h.closes.snapshot(), h.dialErrors.snapshot()
	res.Hello.NotFirst, res.Hello.FramesBefore = h.helloNotFirst.snapshot(), h.framesBeforeHello.snapshot()
	p := &h.poisoned
	p.mu.Lock()
	res.Poison.Sent, res.Poison.OK, res.Poison.Wrong, res.Poison.Inconclusive = p.sent, p.ok, p.bad, p.unclear
	p.mu.Unlock()
	res.Anomalies = h.anomalies.snapshot()
	h.notesMu.Lock()
	res.Notes = slices.Clone(h.notes)
	h.notesMu.Unlock()
	for _, in := range h.instances {
		lines, races, err := in.scanLog()
		if err != nil {
			lines = []string{"could not read the log: " + err.Error()}
		}
		in.mu.Lock()
		in.foldCounters()
		res.Instances = append(res.Instances, instanceResult{Name: in.name, Starts: in.incarnation, MaxRSS: in.hwm,
			ErrorLines: len(lines), DataRaces: races, Crashes: in.crashes, Counters: maps.Clone(in.counters)})
		in.mu.Unlock()
		for _, l := range lines {
			res.ErrorLines = append(res.ErrorLines, in.name+": "+l)
		}
	}

	v := &res.Verification
	fail := func(cond bool, format string, args ...any) {
		if cond {
			res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		}
	}
	fail(v.Lost > 0, "%d acknowledged changes lost", v.Lost)
	fail(v.Duplicated > 0, "%d changes applied more than once", v.Duplicated)
	fail(v.Reordered > 0, "%d tasks changed in another order than acknowledged", v.Reordered)
	fail(v.ModelMismatch > 0, "%d tasks differ in the table from what was acknowledged", v.ModelMismatch)
	fail(v.Unresolved > 0, "%d mutations never answered within --drain %s", v.Unresolved, h.cfg.Drain)
	fail(m.Refused > 0, "%d valid mutations refused (%s)", m.Refused, kv(m.Refusals))
	fail(v.LogGaps > 0, "the change log has gaps for %d users", v.LogGaps)
	fail(r.Gaps > 0, "%d reader gaps (%d seqs skipped)", r.Gaps, r.Missing)
	fail(r.Duplicates > 0, "%d events delivered twice on one socket", r.Duplicates)
	fail(v.ReadersBehind > 0, "%d readers never caught up within --drain %s", v.ReadersBehind, h.cfg.Drain)
	fail(v.ReaderDiffers > 0, "%d readers rebuilt a task list that differs from the table", v.ReaderDiffers)
	fail(sum(res.Hello.NotFirst) > 0, "hello not the first frame on %d sockets (%s)", sum(res.Hello.NotFirst), kv(res.Hello.NotFirst))
	for _, c := range slices.Sorted(maps.Keys(res.Poison.Wrong)) {
		fail(true, "poison %q answered %s", c, kvInt(res.Poison.Wrong[c]))
	}
	fail(v.PoisonStored > 0, "%d changes stored from poison frames", v.PoisonStored)
	fail(v.ReplacementCh > 0, "%d titles hold U+FFFD (invalid UTF-8 stored)", v.ReplacementCh)
	for _, in := range res.Instances {
		for _, c := range in.Crashes {
			fail(true, "%s", c)
		}
		fail(in.DataRaces > 0, "instance %s reported %d data races (see its log)", in.Name, in.DataRaces)
	}
	for _, f := range res.Faults {
		fail(f.Failed != "", "%s: %s", f.Name, f.Failed)
	}
	fail(len(res.Anomalies) > 0, "protocol anomalies: %s", kv(res.Anomalies))
}

func sum[V int | int64](m map[string]V) V {
	var n V
	for _, v := range m {
		n += v
	}
	return n
}

func kv(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func kvInt(m map[string]int) string {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = int64(v)
	}
	return kv(c)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// print writes the tables: the fault run's, then each scenario's, then
// the verdict.
func (res *result) print(out io.Writer) {
	if res.Config.FaultRun {
		res.printFaultRun(out)
	}
	printScenarios(out, res)
	fmt.Fprintln(out)
	if len(res.Failures) == 0 {
		var kept []string
		if res.Config.FaultRun {
			kept = append(kept, "no acknowledged change lost or duplicated, every socket in order and complete")
		}
		if len(res.Scenarios) > 0 {
			kept = append(kept, "every scenario kept its promise")
		}
		fmt.Fprintf(out, "PASS: %s\n", strings.Join(kept, "; "))
		return
	}
	fmt.Fprintf(out, "FAIL (%d):\n", len(res.Failures))
	for _, f := range res.Failures {
		fmt.Fprintf(out, "  - %s\n", f)
	}
	v := &res.Verification
	if len(v.Details)+len(res.Notes) > 0 {
		fmt.Fprintln(out, "examples:")
		for _, d := range append(slices.Clone(v.Details), res.Notes...) {
			fmt.Fprintf(out, "  %s\n", d)
		}
	}
	for _, sr := range res.Scenarios {
		if len(sr.Failures) > 0 && len(sr.Examples) > 0 {
			fmt.Fprintf(out, "examples (%s):\n", sr.Name)
			for _, d := range sr.Examples {
				fmt.Fprintf(out, "  %s\n", d)
			}
		}
	}
	if len(res.ErrorLines) > 0 {
		fmt.Fprintf(out, "server ERROR lines (%d, first 30):\n", len(res.ErrorLines))
		for _, l := range res.ErrorLines[:min(30, len(res.ErrorLines))] {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
}

// tableRow prints one row of a table: a name, a value, a note.
func tableRow(out io.Writer, name string, value any, note string) {
	if note != "" {
		fmt.Fprintf(out, "  %-34s %10v   %s\n", name, value, note)
	} else {
		fmt.Fprintf(out, "  %-34s %10v\n", name, value)
	}
}

// printFaultRun writes the fault run's table.
func (res *result) printFaultRun(out io.Writer) {
	m, r, v := &res.Mutations, &res.Readers, &res.Verification
	row := func(name string, value any, note string) { tableRow(out, name, value, note) }
	mode := "full"
	if res.Config.Quick {
		mode = "quick"
	}
	fmt.Fprintf(out, "\nchaos run %s (%s, %s UTC, %.0f s): 2 instances, %d writers at %.0f/s, faults: %s\n",
		res.Run, mode, res.Started.Format("2006-01-02 15:04"), res.FaultRunSeconds, res.Config.Users, res.Config.Rate, strings.Join(res.Config.Faults, " "))
	for _, f := range res.Faults {
		fmt.Fprintf(out, "  fault at %6.1fs  %-10s %s\n", f.AtS, f.Name, f.Note)
	}
	fmt.Fprintln(out)
	row("mutations sent", m.Sent, fmt.Sprintf("%d over REST; %d frames/requests with resends", m.REST, m.FramesSent))
	row("mutations acked", m.Acked, fmt.Sprintf("%d answered as replays of an earlier attempt", m.Replayed))
	row("lost (acked, not in the database)", v.Lost, "")
	row("duplicated (applied twice)", v.Duplicated, "")
	row("out of acknowledged order", v.Reordered, "")
	row("table != acknowledged changes", v.ModelMismatch, "")
	row("never answered", v.Unresolved, "")
	row("valid mutations refused", m.Refused, kv(m.Refusals))
	row("answers that asked for a retry", sum(m.Retried), kv(m.Retried))
	row("requests timed out (socket dropped)", m.RequestTimeouts, "")
	row("sockets opened", sum(r.Sockets), kv(r.Sockets))
	row("readers", r.Readers+r.Crowd, fmt.Sprintf("%d + a crowd of %d; %d snapshots in %d pages", r.Readers, r.Crowd, r.Snapshots, r.SnapPages))
	row("reader gaps", r.Gaps, fmt.Sprintf("%d seqs skipped", r.Missing))
	row("reader duplicates", r.Duplicates, "")
	row("readers behind the database", v.ReadersBehind, "")
	row("readers' task list != database", v.ReaderDiffers, "")
	row("sockets with hello not first", sum(res.Hello.NotFirst), fmt.Sprintf("%s; frames before hello: %d", kv(res.Hello.NotFirst), sum(res.Hello.FramesBefore)))
	poisonWrong := 0
	for _, by := range res.Poison.Wrong {
		poisonWrong += sum(by)
	}
	row("poison frames sent", sum(res.Poison.Sent), fmt.Sprintf("%d answered as promised, %d not, %d inconclusive (dependency down)", sum(res.Poison.OK), poisonWrong, sum(res.Poison.Inconclusive)))
	for _, c := range slices.Sorted(maps.Keys(res.Poison.Wrong)) {
		row("  poison: "+c, sum(res.Poison.Wrong[c]), "answered "+kvInt(res.Poison.Wrong[c]))
	}
	row("changes stored from poison", v.PoisonStored, fmt.Sprintf("titles with U+FFFD: %d", v.ReplacementCh))
	for _, in := range res.Instances {
		note := fmt.Sprintf("%d starts", in.Starts)
		if in.DataRaces > 0 {
			note += fmt.Sprintf("; %d DATA RACES reported", in.DataRaces)
		}
		row("instance "+in.Name+" max RSS (VmHWM)", mib(in.MaxRSS), note)
	}
	errs := 0
	var per []string
	for _, in := range res.Instances {
		errs += in.ErrorLines
		per = append(per, fmt.Sprintf("%s %d", in.Name, in.ErrorLines))
	}
	row("server ERROR log lines", errs, strings.Join(per, ", "))
	row("socket closes seen", sum(r.Closes), kv(r.Closes)+fmt.Sprintf("; closed by the client to resume elsewhere: %d", r.Churns))
	muts, txs, reruns, known := 0.0, 0.0, 0.0, true
	for _, in := range res.Instances {
		muts += in.Counters["tasksync_mutations_total"]
		txs += in.Counters["tasksync_write_transactions_total"]
		n, ok := in.Counters["tasksync_batch_reruns_total"]
		reruns += n
		known = known && ok
	}
	if known && txs > 0 {
		row("batch reruns (/metrics)", int64(reruns), fmt.Sprintf("%.0f mutations in %.0f write transactions (%.2f per transaction); reruns after a PostgreSQL restart are expected, poison-batch judges them", muts, txs, muts/txs))
	}
	if len(res.Anomalies) > 0 {
		row("protocol anomalies", sum(res.Anomalies), kv(res.Anomalies))
	}
}

// write saves result.json in --out (and --json when given).
func (res *result) write(cfg config) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	for _, p := range []string{filepath.Join(cfg.Out, "result.json"), cfg.JSONPath} {
		if p == "" {
			continue
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}
