// Command chaos checks tasksync's delivery promises (docs/RELIABILITY.md)
// from outside, while things break: it runs two server instances on one
// database and one Redis, writes through sockets (and a little REST) with
// a client that retries every unanswered mutation under its mutation_id,
// reads every user's events on many sockets, and meanwhile kills an
// instance with SIGKILL, restarts PostgreSQL, kills Redis, sends SIGTERM to
// an instance holding hundreds of sockets, and sends poison frames. At the
// end it compares what was acknowledged and what every socket saw with the
// database, prints one table, and exits non-zero on any loss.
//
// After the fault run come the scenarios (scenarios.go): issue 9's repros
// of rows 1 to 5, each against fresh server processes of its own, each
// checking one promise from outside: a snapshot flood from sockets that
// never read (peak RSS growth, every list exact), 1,000 sockets connecting
// during writes with Redis up and down (hello first, events contiguous), a
// locked table (the socket stays open, answers match the database), slow
// request bodies (cut off in time, goroutines back to baseline) and poison
// frames amid batched writes (0 batch reruns). --scenarios picks them;
// --fault-run=false runs them alone.
//
// scripts/chaos.sh (`make chaos`; `CHAOS_QUICK=1` for the one-minute
// version that `make test` runs) starts a private PostgreSQL and Redis,
// builds the server and this program, and runs it:
//
//	chaos --server BIN --database-admin-url URL --redis-url URL --hook CMD [flags]
//
// The PostgreSQL and Redis faults are the hook's to carry out, since the
// script owns those processes: the program runs `CMD pg-restart fast`,
// `CMD pg-restart immediate`, `CMD redis-kill` and `CMD redis-start`. The
// server instances are this program's children. `chaos -h` lists the
// flags; --faults picks which faults run. The hello-first scenario kills
// and restarts Redis through the same hook.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	if errors.Is(err, errFailed) {
		os.Exit(1) // the table says why
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
}

// errFailed means the run completed and found broken promises.
var errFailed = errors.New("promises broken")

// Faults, in the order they run by default. poison is not a step: poison
// frames are sent all along.
const (
	faultKill9     = "kill9"      // SIGKILL instance a, then start it again
	faultPGRestart = "pg-restart" // pg_ctl restart -m fast
	faultPGCrash   = "pg-crash"   // pg_ctl restart -m immediate (crash recovery)
	faultRedisKill = "redis-kill" // SIGKILL Redis, then start it again
	faultSIGTERM   = "sigterm"    // SIGTERM instance b with the crowd of sockets on it, then start it again
	faultPoison    = "poison"     // poison frames on their own sockets during the whole run
)

var allFaults = []string{faultKill9, faultPGRestart, faultPGCrash, faultRedisKill, faultSIGTERM, faultPoison}

// config holds the flags.
type config struct {
	Server        string `json:"-"`
	AdminURL      string `json:"-"`
	RedisURL      string `json:"-"`
	Hook          []string
	ServerEnv     []string `json:"server_env,omitempty"`
	Out           string   `json:"-"`
	JSONPath      string   `json:"-"`
	Quick         bool     `json:"quick"`
	Faults        []string `json:"faults"`
	Users         int      `json:"users"`
	Rate          float64  `json:"rate"`
	Inflight      int      `json:"inflight"`
	Readers       int      `json:"readers_per_user"`
	Crowd         int      `json:"crowd"`
	RESTShare     float64  `json:"rest_share"`
	SeedTasks     int      `json:"seed_tasks"`
	SnapshotShare float64  `json:"snapshot_share"`
	Seed          int64    `json:"seed"`
	PoisonGap     time.Duration
	Churn         time.Duration
	Warmup        time.Duration
	Settle        time.Duration
	Down          time.Duration
	Drain         time.Duration
	ReqTimeout    time.Duration
	// FaultRun is false when only the scenarios run.
	FaultRun  bool          `json:"fault_run"`
	Scenarios []string      `json:"scenarios"`
	Sizes     scenarioSizes `json:"scenario_sizes"`
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hook := fs.String("hook", "", "command that carries out the PostgreSQL and Redis faults: run as CMD pg-restart fast|immediate, CMD redis-kill, CMD redis-start (required unless --faults leaves them out)")
	faults := fs.String("faults", strings.Join(allFaults, ","), "comma-separated faults to run, in this order ("+strings.Join(allFaults, ", ")+"); \"none\" for load only")
	serverEnv := fs.String("server-env", "", "extra VAR=VALUE settings for both instances, comma-separated (e.g. WS_PING_INTERVAL=5s)")
	fs.StringVar(&c.Server, "server", "", "the server binary (go build -o BIN ./cmd/server)")
	fs.StringVar(&c.AdminURL, "database-admin-url", "", "maintenance URL of a PRIVATE PostgreSQL this run may restart (postgres://postgres@127.0.0.1:PORT/postgres)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "URL of a PRIVATE Redis this run may kill (redis://127.0.0.1:PORT/0)")
	fs.StringVar(&c.Out, "out", "", "directory for the server logs and result.json (default: a new temporary directory)")
	fs.StringVar(&c.JSONPath, "json", "", "also write the result as JSON to this file")
	fs.BoolVar(&c.Quick, "quick", false, "the short version (about a minute, inside make test): smaller defaults for the flags below")
	fs.IntVar(&c.Users, "users", 0, "users that write (one writer socket each) (default 8, quick 4)")
	fs.Float64Var(&c.Rate, "rate", 0, "new mutations per second over all writers; retries come on top (default 100, quick 40)")
	fs.IntVar(&c.Inflight, "inflight", 8, "unanswered mutations a writer may have at once")
	fs.IntVar(&c.Readers, "readers", 2, "reader sockets per user besides the crowd (spread over both instances)")
	fs.IntVar(&c.Crowd, "crowd", 0, "further reader sockets, all on instance b, that SIGTERM closes (default 500, quick 200)")
	fs.Float64Var(&c.RESTShare, "rest-share", 0.1, "share of creates sent as POST /api/{user}/tasks with Idempotency-Key instead of on the socket")
	fs.IntVar(&c.SeedTasks, "seed-tasks", 600, "tasks each writing user has before the run, inserted with plain SQL (so that snapshots take more than one page)")
	fs.Float64Var(&c.SnapshotShare, "snapshot-share", 0.25, "share of reader connections (not the crowd) that start over with ?since=-1, a full snapshot, instead of resuming")
	fs.Int64Var(&c.Seed, "seed", 0, "seed of the choice of mutations (0: from the clock); timing still varies from run to run")
	fs.DurationVar(&c.PoisonGap, "poison-every", 0, "pause between two poison sockets (default 500ms, quick 300ms)")
	fs.DurationVar(&c.Churn, "churn", 0, "readers (not the crowd) and writers close their socket after about this long and reconnect to the other instance, resuming (default 10s, quick 5s; negative: never)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "load before the first fault (default 20s, quick 4s)")
	fs.DurationVar(&c.Settle, "settle", 0, "load after each fault before the next (default 40s, quick 5s)")
	fs.DurationVar(&c.Down, "down", 0, "how long a killed instance or Redis stays down (default 5s, quick 2s)")
	fs.DurationVar(&c.Drain, "drain", 2*time.Minute, "after the last fault: longest wait for every mutation to be answered and every reader to catch up")
	fs.DurationVar(&c.ReqTimeout, "request-timeout", 20*time.Second, "a mutation unanswered this long on an open socket: the writer drops the socket and resends on a new one")
	fs.BoolVar(&c.FaultRun, "fault-run", true, "run the load with faults; false: only the --scenarios")
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run after the fault run, in this order ("+strings.Join(allScenarios, ", ")+"); \"none\" for none")
	sz := &c.Sizes
	fs.IntVar(&sz.FloodTasks, "flood-tasks", 0, "snapshot-flood: tasks of the flooding user (default 20000, quick 5000)")
	fs.IntVar(&sz.FloodSockets, "flood-sockets", 0, "snapshot-flood: sockets that ask for snapshots and never read (default 32, quick 16)")
	fs.DurationVar(&sz.FloodFor, "flood-for", 0, "snapshot-flood: how long they ask, every 100ms (default 20s, quick 5s)")
	fs.IntVar(&sz.HelloSockets, "hello-sockets", 0, "hello-first: sockets connecting during the writes, in each of the two runs (default 1000, quick 200)")
	fs.IntVar(&sz.HelloUsers, "hello-users", 0, "hello-first: users the sockets and writes are spread over (default 20, quick 10)")
	fs.Float64Var(&sz.HelloRate, "hello-rate", 500, "hello-first: changes written per second (SQL) while the sockets connect")
	fs.DurationVar(&sz.LockFor, "lock-for", 0, "locked-table: how long the tasks table stays locked (default 40s, quick 8s)")
	fs.IntVar(&sz.SlowConns, "slow-conns", 0, "slow-bodies: connections trickling a body (default 300, quick 60)")
	fs.DurationVar(&sz.BodyTimeout, "slow-body-timeout", 0, "slow-bodies: HTTP_BODY_TIMEOUT of the instance (default: the server's own, 30s; quick 3s)")
	fs.DurationVar(&sz.BatchFor, "batch-for", 0, "poison-batch: how long writers and poison frames run together (default 10s, quick 3s)")
	fs.IntVar(&sz.BatchWriters, "batch-writers", 0, "poison-batch: users writing at once, 8 mutations in flight each (default 24, quick 8)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	def := func(p *int, full, quick int) {
		if *p == 0 {
			*p = full
			if c.Quick {
				*p = quick
			}
		}
	}
	defDur := func(p *time.Duration, full, quick time.Duration) {
		if *p == 0 {
			*p = full
			if c.Quick {
				*p = quick
			}
		}
	}
	def(&c.Users, 8, 4)
	def(&c.Crowd, 500, 200)
	if c.Rate == 0 {
		c.Rate = 100
		if c.Quick {
			c.Rate = 40
		}
	}
	defDur(&c.PoisonGap, 500*time.Millisecond, 300*time.Millisecond)
	defDur(&c.Churn, 10*time.Second, 5*time.Second)
	defDur(&c.Warmup, 20*time.Second, 4*time.Second)
	defDur(&c.Settle, 40*time.Second, 5*time.Second)
	defDur(&c.Down, 5*time.Second, 2*time.Second)
	def(&sz.FloodTasks, 20000, 5000)
	def(&sz.FloodSockets, 32, 16)
	defDur(&sz.FloodFor, 20*time.Second, 5*time.Second)
	def(&sz.HelloSockets, 1000, 200)
	def(&sz.HelloUsers, 20, 10)
	defDur(&sz.LockFor, 40*time.Second, 8*time.Second)
	def(&sz.SlowConns, 300, 60)
	if sz.BodyTimeout == 0 && c.Quick {
		sz.BodyTimeout = 3 * time.Second
	}
	defDur(&sz.BatchFor, 10*time.Second, 3*time.Second)
	def(&sz.BatchWriters, 24, 8)
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}

	if *faults != "none" {
		for _, f := range strings.Split(*faults, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(allFaults, f) {
				return c, fmt.Errorf("--faults: unknown fault %q (known: %s)", f, strings.Join(allFaults, ", "))
			}
			if !slices.Contains(c.Faults, f) {
				c.Faults = append(c.Faults, f)
			}
		}
	}
	if *scen != "none" {
		for _, name := range strings.Split(*scen, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(allScenarios, name) {
				return c, fmt.Errorf("--scenarios: unknown scenario %q (known: %s)", name, strings.Join(allScenarios, ", "))
			}
			if !slices.Contains(c.Scenarios, name) {
				c.Scenarios = append(c.Scenarios, name)
			}
		}
	}
	c.Hook = strings.Fields(*hook)
	for _, kv := range strings.Split(*serverEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if !strings.Contains(kv, "=") {
				return c, fmt.Errorf("--server-env: %q is not VAR=VALUE", kv)
			}
			c.ServerEnv = append(c.ServerEnv, kv)
		}
	}
	if !c.FaultRun {
		c.Faults = nil
	}
	needsHook := slices.ContainsFunc(c.Faults, func(f string) bool {
		return f == faultPGRestart || f == faultPGCrash || f == faultRedisKill
	}) || slices.Contains(c.Scenarios, scenarioHello) // its second run is with Redis killed
	switch {
	case c.Server == "":
		return c, errors.New("--server is required")
	case c.AdminURL == "" || c.RedisURL == "":
		return c, errors.New("--database-admin-url and --redis-url are required: a PostgreSQL and a Redis of this run's own (scripts/chaos.sh starts them)")
	case needsHook && len(c.Hook) == 0:
		return c, errors.New("--hook is required for the pg-restart, pg-crash and redis-kill faults and the hello-first scenario")
	case !c.FaultRun && len(c.Scenarios) == 0:
		return c, errors.New("--fault-run=false and --scenarios none: nothing to run")
	case sz.FloodTasks < 1 || sz.FloodSockets < 1 || sz.HelloSockets < 1 || sz.HelloUsers < 1 || sz.HelloRate <= 0 ||
		sz.SlowConns < 2 || sz.BatchWriters < 1 || sz.FloodFor <= 0 || sz.LockFor <= 0 || sz.BatchFor <= 0 || sz.BodyTimeout < 0:
		return c, errors.New("scenario sizes must be positive (--slow-conns at least 2: half of them authenticated)")
	case c.Users < 1 || c.Readers < 1 || c.Crowd < 0 || c.Inflight < 1:
		return c, errors.New("--users, --readers and --inflight must be at least 1, --crowd at least 0")
	case c.Rate <= 0 || c.RESTShare < 0 || c.RESTShare > 1 || c.SnapshotShare < 0 || c.SnapshotShare > 1 || c.SeedTasks < 0:
		return c, errors.New("--rate must be positive, --rest-share and --snapshot-share within [0, 1], --seed-tasks not negative")
	}
	for _, raw := range []string{c.AdminURL, c.RedisURL} {
		if err := checkLoopback(raw); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkLoopback refuses services off this machine: the run restarts and
// kills what it is given, so it must be a private one.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return nil
	}
	return fmt.Errorf("%s is not on loopback: chaos only runs against services it may break", u.Redacted())
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Out == "" {
		if cfg.Out, err = os.MkdirTemp("", "tasksync-chaos-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	h, err := newHarness(cfg)
	if err != nil {
		return err
	}
	res, err := h.run(ctx)
	if res != nil {
		res.print(stdout)
		if jerr := res.write(cfg); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		return err
	}
	if len(res.Failures) > 0 {
		return errFailed
	}
	return nil
}
