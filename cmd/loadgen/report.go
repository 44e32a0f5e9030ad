package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The report reads the JSON files that scripts/bench.sh leaves in one
// directory, named <key>[-rN].json (N: repetition), and lines up every
// figure with its baseline. A key repeated N times is shown as its median
// with the min..max spread.

// metric names a figure: the files of key, and a dotted path into them.
type metric struct {
	key, path string
}

// row is one line of the table.
type row struct {
	Scenario string
	What     string
	Unit     string
	Val      metric
	BaseWhat string
	Base     metric
	// Compare says how value and baseline make the ratio column: "ratio"
	// (value/baseline), "diff" (value-baseline), or "" (no baseline).
	Compare string
	Target  string
	// Met judges value v against baseline b (nil: informational).
	Met func(v, b float64) bool
}

func reportRows() []row {
	return []row{
		{Scenario: "a", What: "persisted mutations/s through sockets (closed loop, W writers)", Unit: "/s",
			Val: metric{"a-sockets", "mutations.acked_per_second"}, BaseWhat: "pgbench INSERT+pg_notify, W clients",
			Base: metric{"a-pgbench-notify", "tps"}, Compare: "ratio", Target: ">= 0.80",
			Met: func(v, b float64) bool { return v >= 0.8*b }},
		{Scenario: "a", What: "  same with group commit off (one transaction per mutation)", Unit: "/s",
			Val: metric{"a-sockets-nobatch", "mutations.acked_per_second"}, BaseWhat: "pgbench INSERT+pg_notify, W clients",
			Base: metric{"a-pgbench-notify", "tps"}, Compare: "ratio"},
		{Scenario: "a", What: "  same work in Postgres alone", Unit: "/s",
			Val: metric{"a-sockets", "mutations.acked_per_second"}, BaseWhat: "pgbench: tasksync's INSERT INTO tasks tx (triggers, notify), W clients",
			Base: metric{"a-pgbench-tasktx", "tps"}, Compare: "ratio"},
		{Scenario: "a", What: "  group-commit goal: vs plain INSERT", Unit: "/s",
			Val: metric{"a-sockets", "mutations.acked_per_second"}, BaseWhat: "pgbench plain INSERT, 16 clients",
			Base: metric{"a-pgbench-insert", "tps"}, Compare: "ratio", Target: "towards 1.0"},
		{Scenario: "a", What: "  ack latency p50 (W writers)", Unit: "ms",
			Val: metric{"a-sockets", "mutations.ack_latency.p50_ms"}, BaseWhat: "pgbench INSERT+pg_notify latency avg",
			Base: metric{"a-pgbench-notify", "latency_avg_ms"}, Compare: "ratio"},
		{Scenario: "a", What: "  ack latency p99 (W writers)", Unit: "ms",
			Val: metric{"a-sockets", "mutations.ack_latency.p99_ms"}},
		{Scenario: "b", What: "cross-instance write-to-other-socket p50 at 200/s", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p50_ms"}, BaseWhat: "raw NOTIFY->LISTEN p50 at 200/s",
			Base: metric{"b-notify", "latency.p50_ms"}, Compare: "diff", Target: "<= +1 ms",
			Met: func(v, b float64) bool { return v <= b+1 }},
		{Scenario: "b", What: "cross-instance write-to-other-socket p99 at 200/s", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p99_ms"}, BaseWhat: "raw NOTIFY->LISTEN p99 at 200/s",
			Base: metric{"b-notify", "latency.p99_ms"}, Compare: "ratio", Target: "<= 2x",
			Met: func(v, b float64) bool { return v <= 2*b }},
		{Scenario: "b", What: "  p50 vs a like-for-like write", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p50_ms"}, BaseWhat: "INSERT+pg_notify tx ->LISTEN p50",
			Base: metric{"b-insert-notify", "latency.p50_ms"}, Compare: "diff", Target: "<= +0.5 ms",
			Met: func(v, b float64) bool { return v <= b+0.5 }},
		{Scenario: "b", What: "  p99 vs a like-for-like write", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p99_ms"}, BaseWhat: "INSERT+pg_notify tx ->LISTEN p99",
			Base: metric{"b-insert-notify", "latency.p99_ms"}, Compare: "ratio", Target: "<= 2x",
			Met: func(v, b float64) bool { return v <= 2*b }},
		// BENCH_BASE_BIN: another build of the server (the one before a
		// change) in the same run, on a database its own migrations made.
		{Scenario: "b", What: "  p50 vs tasksync's own write without the server", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p50_ms"}, BaseWhat: "tasks.CreateStatement (trigger, change log, NOTIFY) ->LISTEN p50",
			Base: metric{"b-task-notify", "latency.p50_ms"}, Compare: "diff"},
		{Scenario: "b", What: "  p99 vs tasksync's own write without the server", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p99_ms"}, BaseWhat: "tasks.CreateStatement ->LISTEN p99",
			Base: metric{"b-task-notify", "latency.p99_ms"}, Compare: "ratio"},
		{Scenario: "b", What: "  tasksync's write against the like-for-like write, p50", Unit: "ms",
			Val: metric{"b-task-notify", "latency.p50_ms"}, BaseWhat: "INSERT+pg_notify tx ->LISTEN p50",
			Base: metric{"b-insert-notify", "latency.p50_ms"}, Compare: "diff"},
		{Scenario: "b", What: "  Postgres CPU per transaction: tasksync's create (three rows, nine index entries, the trigger, the inline event)", Unit: "us",
			Val: metric{"b-task-notify", "postgres_us_per_tx"}, BaseWhat: "INSERT+pg_notify tx (one row)",
			Base: metric{"b-insert-notify", "postgres_us_per_tx"}, Compare: "ratio"},
		{Scenario: "b", What: "  BENCH_BASE_BIN build: p50 vs a like-for-like write", Unit: "ms",
			Val: metric{"b-base-sockets", "fanout.cross_instance.p50_ms"}, BaseWhat: "INSERT+pg_notify tx ->LISTEN p50",
			Base: metric{"b-insert-notify", "latency.p50_ms"}, Compare: "diff"},
		{Scenario: "b", What: "  BENCH_BASE_BIN build: p99 vs a like-for-like write", Unit: "ms",
			Val: metric{"b-base-sockets", "fanout.cross_instance.p99_ms"}, BaseWhat: "INSERT+pg_notify tx ->LISTEN p99",
			Base: metric{"b-insert-notify", "latency.p99_ms"}, Compare: "ratio"},
		{Scenario: "b", What: "  this build against the BENCH_BASE_BIN build: p50", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p50_ms"}, BaseWhat: "BENCH_BASE_BIN build p50",
			Base: metric{"b-base-sockets", "fanout.cross_instance.p50_ms"}, Compare: "ratio"},
		{Scenario: "b", What: "  this build against the BENCH_BASE_BIN build: p99", Unit: "ms",
			Val: metric{"b-sockets", "fanout.cross_instance.p99_ms"}, BaseWhat: "BENCH_BASE_BIN build p99",
			Base: metric{"b-base-sockets", "fanout.cross_instance.p99_ms"}, Compare: "ratio"},
		{Scenario: "b", What: "  same-instance write-to-other-socket p50 / p99", Unit: "ms",
			Val: metric{"b-sockets", "fanout.same_instance.p50_ms"}, BaseWhat: "p99",
			Base: metric{"b-sockets", "fanout.same_instance.p99_ms"}},
		{Scenario: "c", What: "broadcast: events delivered/s (fan-out to one user's sockets)", Unit: "/s",
			Val: metric{"c-sockets", "events.delivered_per_second"}, BaseWhat: "bare coder/websocket broadcast, same sockets and frames",
			Base: metric{"c-bare", "events.delivered_per_second"}, Compare: "ratio", Target: ">= 0.60",
			Met: func(v, b float64) bool { return v >= 0.6*b }},
		{Scenario: "c", What: "  event frame size", Unit: "B",
			Val: metric{"c-sockets", "events.frame_bytes_avg"}, BaseWhat: "bare frame size",
			Base: metric{"c-bare", "events.frame_bytes_avg"}, Compare: "ratio"},
		{Scenario: "d", What: "RSS per idle authenticated socket (5000; quick: 300)", Unit: "B",
			Val: metric{"d-mem", "memory.0.rss_per_socket"}, BaseWhat: "bare coder/websocket, same count",
			Base: metric{"d-mem-bare", "memory.0.rss_per_socket"}, Compare: "diff", Target: "<= +4096 B",
			Met: func(v, b float64) bool { return v <= b+4096 }},
		{Scenario: "d", What: "  Go heap in use per idle socket", Unit: "B",
			Val: metric{"d-mem", "memory.0.heap_inuse_per_socket"}, BaseWhat: "goroutines per socket",
			Base: metric{"d-mem", "memory.0.goroutines_per_socket"}},
		{Scenario: "d", What: "idle sockets held by one instance (all holders)", Unit: "",
			Val: metric{"d-hold", "sockets.opened"}, BaseWhat: "sockets asked for",
			Base: metric{"d-hold", "sockets.idle"}, Compare: "ratio", Target: "all, no errors",
			Met: func(v, b float64) bool { return v == b }},
		{Scenario: "d", What: "  errors + disconnects while held (holders + live traffic)", Unit: "",
			Val: metric{"d-hold-", "errors_total"}, Target: "0",
			Met: func(v, _ float64) bool { return v == 0 }},
		{Scenario: "d", What: "  live traffic beside them: same-instance p50 / p99", Unit: "ms",
			Val: metric{"d-hold-live", "fanout.same_instance.p50_ms"}, BaseWhat: "p99",
			Base: metric{"d-hold-live", "fanout.same_instance.p99_ms"}},
		{Scenario: "e", What: "write-to-socket p50 with idle sockets of others (10k; quick: 1k)", Unit: "ms",
			Val: metric{"e-idle", "fanout.same_instance.p50_ms"}, BaseWhat: "same, no idle sockets",
			Base: metric{"e-base", "fanout.same_instance.p50_ms"}, Compare: "ratio", Target: "< 1.10",
			Met: func(v, b float64) bool { return v < 1.1*b }},
		{Scenario: "e", What: "  the same, p99", Unit: "ms",
			Val: metric{"e-idle", "fanout.same_instance.p99_ms"}, BaseWhat: "same, no idle sockets",
			Base: metric{"e-base", "fanout.same_instance.p99_ms"}, Compare: "ratio"},
		{Scenario: "f", What: "reconnect storm: kill -9 A, every socket back on B with since: time until all are current", Unit: "s",
			Val: metric{"f-storm", "all_current_s"}, Target: "<= 10 s",
			Met: func(v, _ float64) bool { return v >= 0 && v <= 10 }},
		{Scenario: "f", What: "  per socket: kill to current p50 / p99", Unit: "ms",
			Val: metric{"f-storm", "time_to_current.p50_ms"}, BaseWhat: "p99",
			Base: metric{"f-storm", "time_to_current.p99_ms"}},
		{Scenario: "f", What: "  events missed + duplicated (every socket's seqs checked against user_seqs)", Unit: "",
			Val: metric{"f-storm", "missed"}, BaseWhat: "duplicates",
			Base: metric{"f-storm", "duplicates"}, Target: "0 + 0",
			Met: func(v, b float64) bool { return v == 0 && b == 0 }},
		{Scenario: "f", What: "  errors + disconnects on B (dial failures, closes, error frames)", Unit: "",
			Val: metric{"f-storm", "errors_on_b"}, Target: "0",
			Met: func(v, _ float64) bool { return v == 0 }},
		{Scenario: "f", What: "  Postgres transactions/s during the storm", Unit: "/s",
			Val: metric{"f-storm", "postgres.xact_per_s_storm"}, BaseWhat: "before the kill (writes only)",
			Base: metric{"f-storm", "postgres.xact_per_s_before"}, Compare: "ratio"},
		{Scenario: "-", What: "Redis PUBLISH->SUBSCRIBE p50 at 200/s", Unit: "ms",
			Val: metric{"redis", "paced.latency.p50_ms"}, BaseWhat: "p99",
			Base: metric{"redis", "paced.latency.p99_ms"}},
		{Scenario: "-", What: "Redis PUBLISH->SUBSCRIBE, 1 publisher closed loop", Unit: "/s",
			Val: metric{"redis", "max.received_per_second"}},
		// The peer rows: tasksync beside Centrifugo, same loadgen, sockets,
		// rates and task-event data, alternating runs. Ratio is tasksync /
		// Centrifugo: >= 1 leads on throughput, <= 1 on memory and time.
		{Scenario: "peer", What: "broadcast: deliveries/s, 1000 sockets in 10 groups of 100, a closed-loop writer per group (tasksync: a Postgres commit per change; ?batch=1)", Unit: "/s",
			Val: metric{"p-bc-tasksync", "events.delivered_per_second"}, BaseWhat: "Centrifugo, memory engine, history on",
			Base: metric{"p-bc-cfmemory", "events.delivered_per_second"}, Compare: "ratio", Target: ">= 1.0",
			Met: func(v, b float64) bool { return v >= b }},
		{Scenario: "peer", What: "  the same", Unit: "/s",
			Val: metric{"p-bc-tasksync", "events.delivered_per_second"}, BaseWhat: "Centrifugo, Redis engine, history on",
			Base: metric{"p-bc-cfredis", "events.delivered_per_second"}, Compare: "ratio", Target: ">= 1.0",
			Met: func(v, b float64) bool { return v >= b }},
		{Scenario: "peer", What: "  the same, like for like: each change committed to Postgres on both sides", Unit: "/s",
			Val: metric{"p-bc-tasksync", "events.delivered_per_second"}, BaseWhat: "Centrifugo, Postgres broker (a commit per publication)",
			Base: metric{"p-bc-cfpg", "events.delivered_per_second"}, Compare: "ratio", Target: ">= 1.0",
			Met: func(v, b float64) bool { return v >= b }},
		{Scenario: "peer", What: "  writes acked/s in that run", Unit: "/s",
			Val: metric{"p-bc-tasksync", "mutations.acked_per_second"}, BaseWhat: "Centrifugo memory engine, publishes acked/s",
			Base: metric{"p-bc-cfmemory", "mutations.acked_per_second"}, Compare: "ratio"},
		{Scenario: "peer", What: "  event frame size", Unit: "B",
			Val: metric{"p-bc-tasksync", "events.frame_bytes_avg"}, BaseWhat: "Centrifugo push frame, same task data",
			Base: metric{"p-bc-cfmemory", "events.frame_bytes_avg"}, Compare: "ratio"},
		// CPU per delivery (/proc, over the window): the server's own work
		// beside the peer's, less moved by a shared machine than the rates.
		{Scenario: "peer", What: "  server CPU per delivery (the server process alone)", Unit: "us",
			Val: metric{"p-bc-tasksync", "cpu.servers_us_per_delivery"}, BaseWhat: "Centrifugo, memory engine",
			Base: metric{"p-bc-cfmemory", "cpu.servers_us_per_delivery"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same", Unit: "us",
			Val: metric{"p-bc-tasksync", "cpu.servers_us_per_delivery"}, BaseWhat: "Centrifugo, Postgres broker",
			Base: metric{"p-bc-cfpg", "cpu.servers_us_per_delivery"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  Postgres CPU per delivery (tasksync: its commit, trigger, change log and NOTIFY, over 100 deliveries)", Unit: "us",
			Val: metric{"p-bc-tasksync", "cpu.postgres_us_per_delivery"}, BaseWhat: "Centrifugo, Postgres broker",
			Base: metric{"p-bc-cfpg", "cpu.postgres_us_per_delivery"}, Compare: "ratio"},
		{Scenario: "peer", What: "  all processes' CPU per delivery (server, Postgres, Redis, load generator)", Unit: "us",
			Val: metric{"p-bc-tasksync", "cpu.total_us_per_delivery"}, BaseWhat: "Centrifugo, memory engine",
			Base: metric{"p-bc-cfmemory", "cpu.total_us_per_delivery"}, Compare: "ratio"},
		// The same broadcast at a fixed rate (BENCH_PEER bcfix): per-delivery
		// CPU falls as a process's rate rises, so the rows above compare
		// work done at two rates; here both sides deliver the same per second.
		{Scenario: "peer", What: "broadcast at a fixed 300 changes/s on both sides: deliveries/s", Unit: "/s",
			Val: metric{"p-fix-tasksync", "events.delivered_per_second"}, BaseWhat: "Centrifugo, memory engine",
			Base: metric{"p-fix-cfmemory", "events.delivered_per_second"}, Compare: "ratio"},
		{Scenario: "peer", What: "  server CPU per delivery at that rate (tasksync: with its request path and a Postgres round trip per change)", Unit: "us",
			Val: metric{"p-fix-tasksync", "cpu.servers_us_per_delivery"}, BaseWhat: "Centrifugo, memory engine",
			Base: metric{"p-fix-cfmemory", "cpu.servers_us_per_delivery"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  load generator CPU per delivery at that rate", Unit: "us",
			Val: metric{"p-fix-tasksync", "cpu.loadgen_us_per_delivery"}, BaseWhat: "Centrifugo, memory engine",
			Base: metric{"p-fix-cfmemory", "cpu.loadgen_us_per_delivery"}, Compare: "ratio"},
		{Scenario: "peer", What: "  all processes' CPU per delivery at that rate (tasksync with Postgres's)", Unit: "us",
			Val: metric{"p-fix-tasksync", "cpu.total_us_per_delivery"}, BaseWhat: "Centrifugo, memory engine",
			Base: metric{"p-fix-cfmemory", "cpu.total_us_per_delivery"}, Compare: "ratio"},
		{Scenario: "peer", What: "RSS per idle authenticated socket (5000; quick: 300), subscribed to its user's events", Unit: "B",
			Val: metric{"p-mem-tasksync", "memory.0.rss_per_socket"}, BaseWhat: "Centrifugo, memory engine, one channel each",
			Base: metric{"p-mem-cfmemory", "memory.0.rss_per_socket"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same", Unit: "B",
			Val: metric{"p-mem-tasksync", "memory.0.rss_per_socket"}, BaseWhat: "Centrifugo, Redis engine",
			Base: metric{"p-mem-cfredis", "memory.0.rss_per_socket"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "resume after missing 1000 changes: dial to current (tasksync ?since=&batch=1, from the Postgres change log)", Unit: "ms",
			Val: metric{"p-resume-tasksync", "time_to_current.median_ms"}, BaseWhat: "Centrifugo recovery, memory engine",
			Base: metric{"p-resume-cfmemory", "time_to_current.median_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same", Unit: "ms",
			Val: metric{"p-resume-tasksync", "time_to_current.median_ms"}, BaseWhat: "Centrifugo recovery, Redis engine",
			Base: metric{"p-resume-cfredis", "time_to_current.median_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same", Unit: "ms",
			Val: metric{"p-resume-tasksync", "time_to_current.median_ms"}, BaseWhat: "Centrifugo recovery, Postgres broker",
			Base: metric{"p-resume-cfpg", "time_to_current.median_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  tasksync with one frame a message (no ?batch=1: what wscat gets)", Unit: "ms",
			Val: metric{"p-resume-tasksync1", "time_to_current.median_ms"}, BaseWhat: "Centrifugo recovery, memory engine",
			Base: metric{"p-resume-cfmemory", "time_to_current.median_ms"}, Compare: "ratio"},
		{Scenario: "peer", What: "  of which: dial to first missed change", Unit: "ms",
			Val: metric{"p-resume-tasksync", "time_to_first_change.median_ms"}, BaseWhat: "Centrifugo memory engine (all 1000 come in its subscribe reply)",
			Base: metric{"p-resume-cfmemory", "time_to_first_change.median_ms"}, Compare: "ratio"},
		{Scenario: "peer", What: "cross-instance write-to-other-socket p50 at 200/s (tasksync: persisted, Postgres NOTIFY)", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p50_ms"}, BaseWhat: "Centrifugo Redis engine, client publish, history on",
			Base: metric{"p-lat-cfredis", "fanout.cross_instance.p50_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same, p99", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p99_ms"}, BaseWhat: "Centrifugo Redis engine",
			Base: metric{"p-lat-cfredis", "fanout.cross_instance.p99_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		// The same tasksync runs against Centrifugo's other write paths:
		// its server API (how a backend publishes after its own write),
		// and its Postgres broker (a Postgres commit per publication, as
		// tasksync), from a socket and through the API.
		{Scenario: "peer", What: "  the same, p50", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p50_ms"}, BaseWhat: "Centrifugo Redis engine, server API publish (HTTP keep-alive), history on",
			Base: metric{"p-lat-cfredisapi", "fanout.cross_instance.p50_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same, p99", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p99_ms"}, BaseWhat: "Centrifugo Redis engine, server API publish",
			Base: metric{"p-lat-cfredisapi", "fanout.cross_instance.p99_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same, p50", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p50_ms"}, BaseWhat: "Centrifugo Postgres broker (a commit per publication, NOTIFY wake-up), client publish",
			Base: metric{"p-lat-cfpg", "fanout.cross_instance.p50_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same, p99", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p99_ms"}, BaseWhat: "Centrifugo Postgres broker, client publish",
			Base: metric{"p-lat-cfpg", "fanout.cross_instance.p99_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same, p50", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p50_ms"}, BaseWhat: "Centrifugo Postgres broker, server API publish",
			Base: metric{"p-lat-cfpgapi", "fanout.cross_instance.p50_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "peer", What: "  the same, p99", Unit: "ms",
			Val: metric{"p-lat-tasksync", "fanout.cross_instance.p99_ms"}, BaseWhat: "Centrifugo Postgres broker, server API publish",
			Base: metric{"p-lat-cfpgapi", "fanout.cross_instance.p99_ms"}, Compare: "ratio", Target: "<= 1.0",
			Met: func(v, b float64) bool { return v <= b }},
		{Scenario: "d", What: "  chat turns beside them (test model server, one add_task call each): turn p50 / p99", Unit: "ms",
			Val: metric{"d-hold-live", "chat.turn_latency.p50_ms"}, BaseWhat: "p99",
			Base: metric{"d-hold-live", "chat.turn_latency.p99_ms"}},
	}
}

// figure is a metric's values over the repetitions of its key.
type figure struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

func (f *figure) String() string {
	if f == nil {
		return "-"
	}
	s := num(f.Median)
	if len(f.Values) > 1 {
		s += fmt.Sprintf(" (%s..%s)", num(f.Min), num(f.Max))
	}
	return s
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// load reads every file of a key. A key ending in "-" (such as "d-")
// matches every file that starts with it, summed per file set: it is for
// totals over several processes.
func loadKey(dir, key string) ([]map[string]any, error) {
	var files []string
	if strings.HasSuffix(key, "-") {
		files, _ = filepath.Glob(filepath.Join(dir, key+"*.json"))
	} else {
		exact := filepath.Join(dir, key+".json")
		if _, err := os.Stat(exact); err == nil {
			files = append(files, exact)
		}
		more, _ := filepath.Glob(filepath.Join(dir, key+"-r*.json"))
		files = append(files, more...)
		// d-hold-1, d-hold-2: parts of one measurement
		parts, _ := filepath.Glob(filepath.Join(dir, key+"-[0-9]*.json"))
		files = append(files, parts...)
	}
	slices.Sort(files)
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		m["_file"] = filepath.Base(f)
		out = append(out, m)
	}
	return out, nil
}

func lookup(m map[string]any, path string) (float64, bool) {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(c) {
				return 0, false
			}
			cur = c[i]
		default:
			return 0, false
		}
	}
	f, ok := cur.(float64)
	return f, ok
}

// get returns the figure of a metric: per repetition (-rN files) one
// value; parts of one measurement (-1, -2 files, or a key ending in "-")
// are added up.
func get(dir string, m metric) *figure {
	if m.key == "" {
		return nil
	}
	docs, err := loadKey(dir, m.key)
	if err != nil || len(docs) == 0 {
		return nil
	}
	byRep := map[string]float64{}
	var reps []string
	for _, d := range docs {
		v, ok := lookup(d, m.path)
		if !ok {
			continue
		}
		name := d["_file"].(string)
		rep := ""
		if i := strings.LastIndex(name, "-r"); i >= 0 && !strings.HasSuffix(m.key, "-") {
			rep = strings.TrimSuffix(name[i:], ".json")
		}
		if _, seen := byRep[rep]; !seen {
			reps = append(reps, rep)
		}
		byRep[rep] += v
	}
	if len(reps) == 0 {
		return nil
	}
	f := &figure{}
	for _, r := range reps {
		f.Values = append(f.Values, byRep[r])
	}
	s := slices.Clone(f.Values)
	slices.Sort(s)
	f.Min, f.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		f.Median = s[n/2]
	} else {
		f.Median = (s[n/2-1] + s[n/2]) / 2
	}
	return f
}

type reportRow struct {
	Scenario string   `json:"scenario"`
	What     string   `json:"what"`
	Unit     string   `json:"unit"`
	Value    *figure  `json:"value"`
	BaseWhat string   `json:"baseline_what,omitempty"`
	Baseline *figure  `json:"baseline,omitempty"`
	Compare  string   `json:"compare,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Diff     *float64 `json:"diff,omitempty"`
	Target   string   `json:"target,omitempty"`
	Met      *bool    `json:"met,omitempty"`
}

type machineInfo struct {
	NProc      int    `json:"nproc"`
	CPU        string `json:"cpu"`
	Go         string `json:"go"`
	Postgres   string `json:"postgres,omitempty"`
	Redis      string `json:"redis,omitempty"`
	Centrifugo string `json:"centrifugo,omitempty"`
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after"`
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func runReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory of one bench run's JSON files")
	out := fs.String("out", "", "write the combined JSON (machine, table, every file) here")
	pg := fs.String("pg-version", "", "recorded in the machine section")
	rv := fs.String("redis-version", "", "recorded in the machine section")
	cf := fs.String("peer-version", "", "the Centrifugo version of the peer rows, recorded in the machine section")
	loadBefore := fs.String("load-before", "", "load average at the start of the run")
	writers := fs.Int("writers", 0, "W of the scenario (a) rows")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	mi := machineInfo{NProc: runtime.NumCPU(), CPU: cpuModel(), Go: runtime.Version(), Postgres: *pg, Redis: *rv, Centrifugo: *cf,
		LoadBefore: *loadBefore, LoadAfter: loadAvg()}
	var rows []reportRow
	for _, r := range reportRows() {
		what := strings.ReplaceAll(r.What, "W ", fmt.Sprintf("%d ", *writers))
		what = strings.ReplaceAll(what, "=W", fmt.Sprintf("=%d", *writers))
		baseWhat := strings.ReplaceAll(r.BaseWhat, "W ", fmt.Sprintf("%d ", *writers))
		rr := reportRow{Scenario: r.Scenario, What: what, Unit: r.Unit, Value: get(*dir, r.Val), BaseWhat: baseWhat,
			Baseline: get(*dir, r.Base), Compare: r.Compare, Target: r.Target}
		if rr.Value == nil {
			continue // scenario not run (quick mode, or skipped)
		}
		if rr.Baseline != nil {
			v, b := rr.Value.Median, rr.Baseline.Median
			switch r.Compare {
			case "ratio":
				if b != 0 {
					x := math.Round(v/b*1000) / 1000
					rr.Ratio = &x
				}
			case "diff":
				x := math.Round((v-b)*1000) / 1000
				rr.Diff = &x
			}
		}
		if r.Met != nil {
			b := 0.0
			if rr.Baseline != nil {
				b = rr.Baseline.Median
			}
			met := r.Met(rr.Value.Median, b)
			if rr.Baseline == nil && r.Base.key != "" {
				met = false
			}
			rr.Met = &met
		}
		rows = append(rows, rr)
	}
	printTable(stdout, mi, rows)
	if *out != "" {
		files := map[string]any{}
		paths, _ := filepath.Glob(filepath.Join(*dir, "*.json"))
		for _, p := range paths {
			var v any
			if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &v) == nil {
				files[strings.TrimSuffix(filepath.Base(p), ".json")] = v
			}
		}
		doc := map[string]any{"generated": time.Now().UTC(), "machine": mi, "table": rows, "runs": files}
		return writeJSON(*out, doc)
	}
	return nil
}

func printTable(w io.Writer, mi machineInfo, rows []reportRow) {
	fmt.Fprintf(w, "\nmachine: %d CPUs (%s), %s, PostgreSQL %s, Redis %s; load %s before, %s after\n",
		mi.NProc, mi.CPU, mi.Go, mi.Postgres, mi.Redis, mi.LoadBefore, mi.LoadAfter)
	if mi.Centrifugo != "" {
		fmt.Fprintf(w, "peer: %s\n", mi.Centrifugo)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | figure | tasksync | baseline | ratio / diff | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		val := r.Value.String()
		if r.Unit != "" {
			val += " " + r.Unit
		}
		base := "-"
		if r.Baseline != nil {
			base = r.Baseline.String()
			if r.Unit != "" && r.BaseWhat != "goroutines per socket" && r.BaseWhat != "sockets asked for" {
				base += " " + r.Unit
			}
			base += " (" + r.BaseWhat + ")"
		}
		cmp := ""
		switch {
		case r.Ratio != nil:
			cmp = fmt.Sprintf("%.2fx", *r.Ratio)
		case r.Diff != nil:
			cmp = fmt.Sprintf("%+.3g %s", *r.Diff, r.Unit)
		}
		met := ""
		if r.Met != nil {
			met = "no"
			if *r.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Scenario, r.What, val, base, cmp, r.Target, met)
	}
}
