package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"tasksync/auth"
	"tasksync/internal/reqlog"
)

// `loadgen storm`: the reconnect storm (scenario f of docs/BENCHMARKS.md).
//
//  1. N sockets of U users connect to instance A (--url-a) and read every
//     frame; each notes the seq of its hello.
//  2. Changes flow: task creates over REST on instance B (--url-b) at a
//     fixed rate, for random users, all along.
//  3. A is killed with SIGKILL (--kill-pid: a real process, started by the
//     caller). Every socket sees its connection drop and reconnects to B
//     with ?since=<the last seq it received>, after a full-jitter backoff
//     (uniform in [0, min(max, min·2^attempt)], the SDK's defaults: 500 ms
//     and 20 s).
//  4. A socket is current once B has answered its resume (the synced frame
//     that ends a ?since= replay) and it holds every change that existed
//     when B greeted it (hello's seq). The figure is the time from the kill
//     until the last socket is current.
//  5. The writes stop; every socket must then hold its user's last seq
//     (read from user_seqs), having received each seq exactly once and in
//     order: a seq skipped is missed, a seq seen again is a duplicate.
//
// Postgres load is read from pg_stat_database (this database only) every
// 250 ms: transactions committed (each autocommit query is one) and rows
// returned, before the kill and during the storm.

type stormConfig struct {
	Label      string        `json:"label"`
	URLA       string        `json:"url_a"`
	URLB       string        `json:"url_b"`
	KillPID    int           `json:"-"`
	Users      int           `json:"users"`
	Sockets    int           `json:"sockets"`
	Rate       float64       `json:"write_rate"`
	Before     time.Duration `json:"-"`
	After      time.Duration `json:"-"`
	Deadline   time.Duration `json:"-"`
	BackoffMin time.Duration `json:"-"`
	BackoffMax time.Duration `json:"-"`
	DialConc   int           `json:"dial_concurrency"`
	// Failover: A and B are one load balancer in front of several
	// instances and --kill-pid is one of them: only the sockets it held
	// drop, and only they have to become current.
	Failover  bool `json:"failover"`
	SourceIPs int  `json:"source_ips"`
	// for the JSON
	BeforeS     float64 `json:"writes_before_kill_s"`
	AfterS      float64 `json:"writes_after_kill_s"`
	BackoffMinS float64 `json:"backoff_min_s"`
	BackoffMaxS float64 `json:"backoff_max_s"`
	db          string
	secret      string
	json        string
}

type stormResult struct {
	Tool    string      `json:"tool"`
	Label   string      `json:"label"`
	Run     string      `json:"run"`
	Started time.Time   `json:"started"`
	Config  stormConfig `json:"config"`

	Opened      int     `json:"sockets_opened"`
	OpenSeconds float64 `json:"open_seconds"`
	// AllCurrentS is from the kill until the last socket was current (-1:
	// not all were, within the deadline). Current is the per-socket
	// distribution of the same time.
	AllCurrentS  float64 `json:"all_current_s"`
	CurrentCount int     `json:"current_sockets"`
	// Dropped are the sockets whose connection ended after the kill (all
	// of them, unless --failover).
	Dropped int `json:"sockets_dropped"`
	// Instances counts the sockets by the instance that greeted them
	// (hello's instance), at the first connect and at the reconnects.
	InstancesBefore map[string]int64 `json:"instances_first_connect"`
	InstancesAfter  map[string]int64 `json:"instances_reconnect"`
	Current         latencySummary   `json:"time_to_current"`
	Reconnects      int64            `json:"reconnects"`
	Attempts        int64            `json:"dial_attempts"`
	// What every socket received, checked against user_seqs at the end.
	Events     int64 `json:"events_received"`
	Missed     int64 `json:"missed"`
	Duplicates int64 `json:"duplicates"`
	Reordered  int64 `json:"reordered"`
	Snapshots  int64 `json:"snapshots"`
	Behind     int   `json:"sockets_behind_at_end"`
	// Errors and disconnects seen on B (after the kill): dial failures by
	// kind, close codes of sockets on B, error frames by code.
	// ErrorsB is their sum.
	ErrorsB      int64            `json:"errors_on_b"`
	DialErrorsB  map[string]int64 `json:"dial_errors_b"`
	ClosesB      map[string]int64 `json:"closes_b"`
	ErrorFramesB map[string]int64 `json:"error_frames_b"`
	ClosesA      map[string]int64 `json:"closes_a_before_kill"`
	// Writes over REST on B.
	Writes      int64            `json:"writes_ok"`
	WriteErrors map[string]int64 `json:"write_errors"`
	WriteBefore latencySummary   `json:"write_latency_before_kill"`
	WriteStorm  latencySummary   `json:"write_latency_during_storm"`
	Postgres    stormPG          `json:"postgres"`
	// ListenOverflows is the kernel's count of connections dropped because
	// a listen queue was full (TcpExt ListenOverflows, machine-wide) from
	// the kill to the end: each one is a client's SYN retried 1 s, 3 s,
	// 7 s later.
	ListenOverflows int64              `json:"listen_overflows"`
	ServerB         map[string]float64 `json:"server_b_metrics_delta"`
	Errors          []string           `json:"errors,omitempty"`
}

// stormPG is Postgres' load, from pg_stat_database of the run's database.
type stormPG struct {
	// Rates over the seconds before the kill (writes only) and from the
	// kill until all were current; peak: the highest over any 1 s.
	XactPerSBefore   float64 `json:"xact_per_s_before"`
	XactPerSStorm    float64 `json:"xact_per_s_storm"`
	XactPerSPeak     float64 `json:"xact_per_s_peak_1s"`
	TupRetPerSBefore float64 `json:"tup_returned_per_s_before"`
	TupRetPerSStorm  float64 `json:"tup_returned_per_s_storm"`
	XactStorm        int64   `json:"xact_storm"`
	BackendsPeak     int64   `json:"backends_peak"`
}

type pgSample struct {
	at       time.Duration
	xact     int64
	tupRet   int64
	backends int64
}

type storm struct {
	cfg     stormConfig
	t0      time.Time
	tokens  []string
	socks   []*stormSocket
	killed  atomic.Int64 // time of the kill since t0, 0 before
	dialSem chan struct{}
	clients []*http.Client

	mu                      sync.Mutex
	dialErrB, closesB, errB map[string]int64
	closesA, writeErr       map[string]int64
	errors                  []string
	current                 hist
	writeBefore, writeStorm hist
	reconnects, attempts    atomic.Int64
	dropped                 atomic.Int64
	instBefore, instAfter   map[string]int64
	writes                  atomic.Int64
	currentN                atomic.Int64
}

type stormSocket struct {
	idx, user int
	mu        sync.Mutex
	last      int64 // last seq received
	events    int64
	missed    int64 // seqs skipped
	dups      int64 // seqs received again
	reordered int64
	snapshots int64
	current   bool
}

func (s *storm) since() time.Duration { return time.Since(s.t0) }

func (s *storm) count(m map[string]int64, key string) {
	s.mu.Lock()
	m[key]++
	s.mu.Unlock()
}

func (s *storm) fail(format string, args ...any) {
	s.mu.Lock()
	if len(s.errors) < 20 {
		s.errors = append(s.errors, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

func runStorm(ctx context.Context, args []string, stdout io.Writer) error {
	var c stormConfig
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	fs.StringVar(&c.Label, "label", "storm", "label of this run in the JSON")
	fs.StringVar(&c.URLA, "url-a", "", "socket URL of instance A, the one killed (ws://127.0.0.1:P/ws)")
	fs.StringVar(&c.URLB, "url-b", "", "socket URL of instance B, where everything reconnects and the writes go")
	fs.IntVar(&c.KillPID, "kill-pid", 0, "pid of instance A: SIGKILLed once the writes have run --before")
	fs.StringVar(&c.db, "db", "", "the instances' database URL (user_seqs at the end, pg_stat_database during the run)")
	fs.StringVar(&c.secret, "secret", "", "the instances' AUTH_JWT_SECRET (HS256 tokens are minted with it)")
	fs.IntVar(&c.Users, "users", 1000, "users")
	fs.IntVar(&c.Sockets, "sockets", 10000, "sockets on A, spread evenly over the users")
	fs.Float64Var(&c.Rate, "rate", 200, "task creates per second over REST on B, for random users, all along")
	fs.DurationVar(&c.Before, "before", 3*time.Second, "writes before the kill")
	fs.DurationVar(&c.After, "after", 10*time.Second, "writes after the kill")
	fs.DurationVar(&c.Deadline, "deadline", 60*time.Second, "from the kill, how long the sockets may take to be current and complete")
	fs.DurationVar(&c.BackoffMin, "backoff-min", 500*time.Millisecond, "reconnect backoff: full jitter in [0, min(max, min*2^attempt)] (the SDK's default 500 ms)")
	fs.DurationVar(&c.BackoffMax, "backoff-max", 20*time.Second, "reconnect backoff cap (the SDK's default 20 s)")
	fs.IntVar(&c.DialConc, "dial-concurrency", 64, "sockets opened at once before the kill (the reconnects are paced by the backoff alone)")
	fs.BoolVar(&c.Failover, "failover", false, "--url-a and --url-b are a load balancer and --kill-pid one instance behind it: only the sockets that drop have to become current")
	fs.IntVar(&c.SourceIPs, "source-ips", 1, "spread the sockets over this many source addresses 127.0.0.1..N")
	fs.StringVar(&c.json, "json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range []string{c.URLA, c.URLB, c.db} {
		if u == "" {
			return errors.New("--url-a, --url-b and --db are required")
		}
		if err := checkLoopbackURL(u); err != nil {
			return err
		}
	}
	switch {
	case c.secret == "":
		return errors.New("--secret is required")
	case c.KillPID <= 0:
		return errors.New("--kill-pid is required: the pid of instance A")
	case c.Users < 1 || c.Sockets < c.Users:
		return errors.New("--users must be >= 1 and --sockets >= --users")
	case c.Rate <= 0 || c.Rate > 5000:
		return errors.New("--rate must be in (0, 5000]")
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return errors.New("--backoff-min must be > 0 and <= --backoff-max")
	}
	c.BeforeS, c.AfterS = c.Before.Seconds(), c.After.Seconds()
	c.BackoffMinS, c.BackoffMaxS = c.BackoffMin.Seconds(), c.BackoffMax.Seconds()

	s := &storm{cfg: c, t0: time.Now(), dialSem: make(chan struct{}, max(1, c.DialConc)),
		dialErrB: map[string]int64{}, closesB: map[string]int64{}, errB: map[string]int64{},
		closesA: map[string]int64{}, writeErr: map[string]int64{}, instBefore: map[string]int64{}, instAfter: map[string]int64{}}
	res, err := s.run(ctx)
	if res != nil {
		res.print(stdout)
		if jerr := writeJSON(c.json, res); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

func (s *storm) run(ctx context.Context) (*stormResult, error) {
	c := s.cfg
	run := strings.ToLower(reqlog.NewID()[:8])
	res := &stormResult{Tool: "loadgen storm", Label: c.Label, Run: run, Started: s.t0.UTC(), Config: c, AllCurrentS: -1}

	db, err := pgx.Connect(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	defer db.Close(context.Background())

	users := make([]string, c.Users)
	s.tokens = make([]string, c.Users)
	for i := range users {
		users[i] = fmt.Sprintf("storm-%s-%d", run, i)
		if s.tokens[i], err = auth.IssueHS256([]byte(c.secret), users[i], 2*time.Hour, "", ""); err != nil {
			return nil, err
		}
	}
	s.clients = make([]*http.Client, max(1, c.SourceIPs))
	for i := range s.clients {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if c.SourceIPs > 1 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
		}
		s.clients[i] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1}}
	}

	// 1. Open every socket on A.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var readers sync.WaitGroup
	opened := make(chan bool, c.Sockets)
	s.socks = make([]*stormSocket, c.Sockets)
	for i := range s.socks {
		s.socks[i] = &stormSocket{idx: i, user: i % c.Users}
	}
	fmt.Fprintf(os.Stderr, "storm: opening %d sockets of %d users on A\n", c.Sockets, c.Users)
	for _, so := range s.socks {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.socketLoop(runCtx, so, opened)
		}()
	}
	for range c.Sockets {
		select {
		case ok := <-opened:
			if ok {
				res.Opened++
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.OpenSeconds = round3(s.since().Seconds())
	fmt.Fprintf(os.Stderr, "storm: %d of %d sockets open on A in %.1f s\n", res.Opened, c.Sockets, res.OpenSeconds)
	if res.Opened < c.Sockets {
		stopRun()
		readers.Wait()
		return res, fmt.Errorf("only %d of %d sockets opened on A", res.Opened, c.Sockets)
	}

	// 2. Writes on B, and Postgres sampled (on a connection of its own).
	sampDB, err := pgx.Connect(ctx, c.db)
	if err != nil {
		return res, fmt.Errorf("connect to the database: %w", err)
	}
	defer sampDB.Close(context.Background())
	var samples []pgSample
	var sampMu sync.Mutex
	sampCtx, stopSamp := context.WithCancel(ctx)
	defer stopSamp()
	sampDone := make(chan struct{})
	go func() {
		defer close(sampDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if p, err := readPG(sampCtx, sampDB); err == nil {
				p.at = s.since()
				sampMu.Lock()
				samples = append(samples, p)
				sampMu.Unlock()
			}
			select {
			case <-sampCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	metricsB := metricsURL(c.URLB)
	mBefore, _ := scrapeMetrics(ctx, metricsB, stormMetrics...)
	writeCtx, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	writesDone := make(chan struct{})
	go func() {
		defer close(writesDone)
		s.writeLoop(writeCtx, users)
	}()
	writeStart := s.since()
	if !sleepCtx(ctx, c.Before) {
		stopWrites()
		return res, ctx.Err()
	}

	// 3. Kill A.
	overflows := listenOverflows()
	killAt := s.since()
	s.killed.Store(int64(killAt))
	if err := syscall.Kill(c.KillPID, syscall.SIGKILL); err != nil {
		stopWrites()
		return res, fmt.Errorf("kill -9 %d: %w", c.KillPID, err)
	}
	fmt.Fprintf(os.Stderr, "storm: killed A (pid %d) at %.1f s; every socket reconnects to B\n", c.KillPID, killAt.Seconds())

	// 4. Wait for every socket to be current (the writes go on).
	deadline := time.Now().Add(c.Deadline)
	var allAt time.Duration
	stopWritesAt := time.Now().Add(c.After)
	writesStopped := false
	for time.Now().Before(deadline) {
		if !writesStopped && time.Now().After(stopWritesAt) {
			stopWrites() // writes under way finish on their own; waited for below
			writesStopped = true
		}
		target := int64(c.Sockets)
		if c.Failover {
			// The dropped sockets are known once the load balancer has
			// passed the kill on (well within a second).
			target = s.dropped.Load()
			if s.since()-killAt < 2*time.Second || target == 0 {
				target = -1
			}
		}
		if allAt == 0 && s.currentN.Load() == target {
			// The last socket's own time, not when this loop saw it.
			allAt = killAt + time.Duration(s.current.max.Load())
			res.AllCurrentS = round3((allAt - killAt).Seconds())
			fmt.Fprintf(os.Stderr, "storm: all %d dropped sockets current %.2f s after the kill\n", target, res.AllCurrentS)
		}
		if allAt != 0 && writesStopped {
			break
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
	}
	stopWrites()
	<-writesDone
	stormEnd := allAt
	if stormEnd == 0 {
		stormEnd = s.since()
		fmt.Fprintf(os.Stderr, "storm: %d of %d sockets current after %s\n", s.currentN.Load(), c.Sockets, c.Deadline)
	}
	mAfter, _ := scrapeMetrics(ctx, metricsB, stormMetrics...)
	res.ListenOverflows = listenOverflows() - overflows

	// 5. Every socket must reach its user's last seq.
	final, err := finalSeqs(ctx, db, users)
	if err != nil {
		return res, err
	}
	complete := func() int {
		behind := 0
		for _, so := range s.socks {
			so.mu.Lock()
			if so.last < final[so.user] {
				behind++
			}
			so.mu.Unlock()
		}
		return behind
	}
	for time.Now().Before(deadline.Add(10*time.Second)) && complete() > 0 {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
	}
	stopSamp()
	<-sampDone
	stopRun()
	readers.Wait()

	for _, so := range s.socks {
		so.mu.Lock()
		res.Events += so.events
		res.Missed += so.missed
		res.Duplicates += so.dups
		res.Reordered += so.reordered
		res.Snapshots += so.snapshots
		if d := final[so.user] - so.last; d > 0 {
			res.Missed += d
			res.Behind++
		}
		so.mu.Unlock()
	}
	res.CurrentCount = int(s.currentN.Load())
	res.Dropped = int(s.dropped.Load())
	res.Current = s.current.summary()
	res.Reconnects, res.Attempts = s.reconnects.Load(), s.attempts.Load()
	res.Writes = s.writes.Load()
	s.mu.Lock()
	res.DialErrorsB, res.ClosesB, res.ErrorFramesB, res.ClosesA, res.WriteErrors = s.dialErrB, s.closesB, s.errB, s.closesA, s.writeErr
	res.Errors = s.errors
	res.InstancesBefore, res.InstancesAfter = s.instBefore, s.instAfter
	s.mu.Unlock()
	for _, m := range []map[string]int64{res.DialErrorsB, res.ClosesB, res.ErrorFramesB} {
		for _, v := range m {
			res.ErrorsB += v
		}
	}
	res.WriteBefore, res.WriteStorm = s.writeBefore.summary(), s.writeStorm.summary()
	res.Postgres = pgLoad(samples, writeStart, killAt, stormEnd)
	if !c.Failover { // behind a load balancer, /metrics is any instance's
		res.ServerB = map[string]float64{}
		for _, n := range stormMetrics {
			res.ServerB[n] = mAfter[n] - mBefore[n]
		}
	}
	if !c.Failover && res.Dropped != c.Sockets {
		s.fail("%d of %d sockets dropped at the kill (all were on A)", res.Dropped, c.Sockets)
	}
	if res.Missed > 0 || res.Duplicates > 0 || res.Reordered > 0 || res.AllCurrentS < 0 {
		return res, fmt.Errorf("storm: %d missed, %d duplicates, %d reordered, %d of %d sockets current",
			res.Missed, res.Duplicates, res.Reordered, res.CurrentCount, c.Sockets)
	}
	return res, nil
}

// stormMetrics are B's counters reported as deltas over the storm.
var stormMetrics = []string{"tasksync_change_log_reads_total", "tasksync_catchup_queries_total",
	"tasksync_catchup_requests_total", "tasksync_catchups_refused_total", "tasksync_snapshots_total", "tasksync_sockets_open"}

// listenOverflows reads TcpExt ListenOverflows from /proc/net/netstat (0
// where there is none).
func listenOverflows() int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "ListenOverflows" {
				v, _ := strconv.ParseInt(values[j], 10, 64)
				return v
			}
		}
	}
	return 0
}

func readPG(ctx context.Context, db *pgx.Conn) (pgSample, error) {
	var p pgSample
	err := db.QueryRow(ctx, `SELECT xact_commit, tup_returned, numbackends FROM pg_stat_database WHERE datname = current_database()`).
		Scan(&p.xact, &p.tupRet, &p.backends)
	return p, err
}

// pgLoad turns the samples into rates before the kill and during the storm.
func pgLoad(samples []pgSample, from, kill, end time.Duration) stormPG {
	var out stormPG
	at := func(t time.Duration) (pgSample, bool) { // the first sample at or after t
		for _, p := range samples {
			if p.at >= t {
				return p, true
			}
		}
		return pgSample{}, false
	}
	rate := func(a, b pgSample, v func(pgSample) int64) float64 {
		d := (b.at - a.at).Seconds()
		if d <= 0 {
			return 0
		}
		return float64(int64(float64(v(b)-v(a))/d*10)) / 10
	}
	xact := func(p pgSample) int64 { return p.xact }
	tup := func(p pgSample) int64 { return p.tupRet }
	if a, ok := at(from); ok {
		if b, ok := at(kill - 250*time.Millisecond); ok {
			out.XactPerSBefore, out.TupRetPerSBefore = rate(a, b, xact), rate(a, b, tup)
		}
	}
	if a, ok := at(kill - 250*time.Millisecond); ok {
		if b, ok := at(end); ok || len(samples) > 0 {
			if !ok {
				b = samples[len(samples)-1]
			}
			out.XactPerSStorm, out.TupRetPerSStorm = rate(a, b, xact), rate(a, b, tup)
			out.XactStorm = b.xact - a.xact
		}
	}
	for i, a := range samples {
		if a.backends > out.BackendsPeak {
			out.BackendsPeak = a.backends
		}
		for _, b := range samples[i+1:] {
			if b.at-a.at >= time.Second {
				if r := rate(a, b, xact); r > out.XactPerSPeak && a.at >= kill-250*time.Millisecond {
					out.XactPerSPeak = r
				}
				break
			}
		}
	}
	return out
}

func finalSeqs(ctx context.Context, db *pgx.Conn, users []string) ([]int64, error) {
	idx := make(map[string]int, len(users))
	for i, u := range users {
		idx[u] = i
	}
	rows, err := db.Query(ctx, `SELECT user_id, seq FROM user_seqs WHERE user_id = ANY($1)`, users)
	if err != nil {
		return nil, fmt.Errorf("read user_seqs: %w", err)
	}
	defer rows.Close()
	out := make([]int64, len(users))
	for rows.Next() {
		var u string
		var seq int64
		if err := rows.Scan(&u, &seq); err != nil {
			return nil, err
		}
		out[idx[u]] = seq
	}
	return out, rows.Err()
}

// ---------------------------------------------------------------- sockets

var (
	prefixSynced   = []byte(`{"type":"synced"`)
	prefixSnapshot = []byte(`{"type":"snapshot"`)
)

// socketLoop runs one device: connect to A, read; after the kill,
// reconnect to B with since and backoff until the run ends.
func (s *storm) socketLoop(ctx context.Context, so *stormSocket, opened chan<- bool) {
	hc := s.clients[so.idx%len(s.clients)]
	// First connect, on A, paced by the dial semaphore.
	// A connect that fails (a shared machine's hiccup) is tried again, as
	// a client would, up to three times.
	var conn *websocket.Conn
	var hello int64
	var err error
	for try := range 3 {
		if try > 0 && !sleepCtx(ctx, time.Duration(rand.Int64N(int64(s.cfg.BackoffMin)<<try))) {
			break
		}
		s.dialSem <- struct{}{}
		conn, hello, _, err = s.dial(ctx, hc, s.cfg.URLA, so, -1)
		<-s.dialSem
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		s.fail("socket %d: connect to A: %v", so.idx, err)
		opened <- false
		return
	}
	opened <- true
	code := s.read(ctx, conn, so, hello, false)
	if ctx.Err() != nil {
		return
	}
	if s.killed.Load() == 0 {
		s.count(s.closesA, code)
	}
	s.dropped.Add(1)
	attempt := 0
	for ctx.Err() == nil {
		// Full jitter, as the SDK (clients/ts backoffDelay).
		wait := time.Duration(rand.Int64N(int64(min(s.cfg.BackoffMax, s.cfg.BackoffMin<<min(attempt, 20))) + 1))
		if !sleepCtx(ctx, wait) {
			return
		}
		attempt++
		s.attempts.Add(1)
		so.mu.Lock()
		since := so.last
		so.mu.Unlock()
		conn, hello, key, err := s.dial(ctx, hc, s.cfg.URLB, so, since)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.count(s.dialErrB, key)
			continue
		}
		s.reconnects.Add(1)
		code := s.read(ctx, conn, so, hello, true)
		if ctx.Err() != nil {
			return
		}
		s.count(s.closesB, code)
		attempt = 0 // it was connected: start the backoff over
	}
}

// dial connects and reads hello (its seq is returned); since < 0 connects
// without resuming. key names a failure for the counts.
func (s *storm) dial(ctx context.Context, hc *http.Client, url string, so *stormSocket, since int64) (conn *websocket.Conn, hello int64, key string, err error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := url + "?device=storm"
	if since >= 0 {
		u += "&since=" + strconv.FormatInt(since, 10)
	}
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + s.tokens[so.user]}}})
	if err != nil {
		switch {
		case resp != nil:
			return nil, 0, "http_" + strconv.Itoa(resp.StatusCode), err
		case dctx.Err() != nil:
			return nil, 0, "dial_timeout", err
		}
		return nil, 0, "dial", err
	}
	conn.SetReadLimit(64 << 20)
	_, b, err := conn.Read(dctx)
	if err != nil {
		conn.CloseNow()
		if code := websocket.CloseStatus(err); code != -1 {
			return nil, 0, "close_before_hello_" + strconv.Itoa(int(code)), err
		}
		return nil, 0, "no_hello", err
	}
	if !bytes.HasPrefix(b, prefixHello) {
		conn.CloseNow()
		return nil, 0, "hello_not_first", fmt.Errorf("first frame is not hello: %.100s", b)
	}
	hello, _ = intField(b, `"seq":`)
	if since < 0 {
		s.count(s.instBefore, stringField(b, `"instance":"`))
	} else {
		s.count(s.instAfter, stringField(b, `"instance":"`))
	}
	if since < 0 {
		so.mu.Lock()
		so.last = hello
		so.mu.Unlock()
	}
	return conn, hello, "", nil
}

// read reads frames until the connection ends; it returns the close code
// ("1006" for a dropped connection). On B, the socket becomes
// current at the synced frame that ends its resume, provided it then holds
// everything up to hello's seq.
func (s *storm) read(ctx context.Context, conn *websocket.Conn, so *stormSocket, hello int64, onB bool) string {
	defer conn.CloseNow()
	synced := false
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				return strconv.Itoa(int(code))
			}
			return "1006"
		}
		switch {
		case bytes.HasPrefix(b, prefixEvent):
			seq, ok := intField(b, `"seq":`)
			if !ok {
				s.fail("socket %d: event without seq: %.100s", so.idx, b)
				continue
			}
			so.mu.Lock()
			switch {
			case seq == so.last+1:
				so.last = seq
				so.events++
			case seq <= so.last:
				so.dups++
			default:
				so.missed += seq - so.last - 1
				so.last = seq
				so.events++
			}
			so.mu.Unlock()
		case bytes.HasPrefix(b, prefixSynced):
			synced = true
		case bytes.HasPrefix(b, prefixSnapshot):
			// A snapshot replaces a replay the log could not give: it
			// moves the socket to its seq (not expected here: nothing is
			// pruned during a run).
			so.mu.Lock()
			so.snapshots++
			if seq, ok := intField(b, `"seq":`); ok && seq > so.last {
				so.last = seq
			}
			so.mu.Unlock()
		case bytes.HasPrefix(b, prefixError):
			code := stringField(b, `"code":"`)
			if onB {
				s.count(s.errB, code)
			}
		}
		if onB && synced {
			so.mu.Lock()
			done := !so.current && so.last >= hello
			if done {
				so.current = true
			}
			so.mu.Unlock()
			if done {
				s.current.record(s.since() - time.Duration(s.killed.Load()))
				s.currentN.Add(1)
			}
		}
	}
}

// ---------------------------------------------------------------- writes

// writeLoop creates tasks over REST on B at the configured rate, for random
// users, open loop (a slow answer does not delay the next write).
func (s *storm) writeLoop(ctx context.Context, users []string) {
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(s.cfg.URLB, "ws"), "/ws")
	// A bounded pool, as a client has: under a storm, writes wait for a
	// connection instead of opening thousands more against the same
	// accept queue.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	interval := time.Duration(float64(time.Second) / s.cfg.Rate)
	next := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 && !sleepCtx(ctx, d) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		u := rand.IntN(len(users))
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"title":"storm %d","description":""}`, n)
			key := fmt.Sprintf("storm-%d-%d", s.t0.UnixNano(), n)
			start := time.Now()
			// A write whose answer is lost (its instance killed behind a
			// load balancer: 502) is sent again under the same
			// Idempotency-Key, as a client would; each failed try counts,
			// and gave_up counts the writes abandoned.
			for try := 0; ; try++ {
				req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost,
					base+"/api/"+users[u]+"/tasks", strings.NewReader(body))
				if err != nil {
					s.count(s.writeErr, "request")
					return
				}
				req.Header.Set("Authorization", "Bearer "+s.tokens[u])
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", key)
				resp, err := hc.Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if status == http.StatusCreated || status == http.StatusOK {
					break
				}
				if err != nil {
					s.count(s.writeErr, "transport")
				} else {
					s.count(s.writeErr, "http_"+strconv.Itoa(status))
				}
				// Only a load balancer's "the instance behind me failed" is
				// sent again; a timeout is an overloaded server, and
				// retrying it would only add to the load.
				if try == 4 || (status != http.StatusBadGateway && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout) {
					s.count(s.writeErr, "gave_up")
					return
				}
				time.Sleep(time.Duration(100*(try+1)) * time.Millisecond) // a retry pause, not a wait for a condition
			}
			s.writes.Add(1)
			if s.killed.Load() == 0 {
				s.writeBefore.record(time.Since(start))
			} else {
				s.writeStorm.record(time.Since(start))
			}
		}()
	}
}

// ---------------------------------------------------------------- report

func (r *stormResult) print(w io.Writer) {
	c := r.Config
	if c.Failover {
		fmt.Fprintf(w, "failover %s: %d sockets of %d users through the load balancer (opened in %.1f s), kill -9 one instance, its sockets reconnect through the load balancer with since; writes %.0f/s over REST through it\n",
			r.Label, c.Sockets, c.Users, r.OpenSeconds, c.Rate)
	} else {
		fmt.Fprintf(w, "storm %s: %d sockets of %d users on A (opened in %.1f s), kill -9 A, all reconnect to B with since; writes %.0f/s over REST on B\n",
			r.Label, c.Sockets, c.Users, r.OpenSeconds, c.Rate)
	}
	if r.AllCurrentS >= 0 {
		fmt.Fprintf(w, "  all current:        %.2f s after the kill (per socket p50 %.0f ms, p99 %.0f ms, max %.0f ms)\n",
			r.AllCurrentS, r.Current.P50ms, r.Current.P99ms, r.Current.MaxMS)
	} else {
		fmt.Fprintf(w, "  all current:        NO: %d of %d sockets within the deadline\n", r.CurrentCount, c.Sockets)
	}
	fmt.Fprintf(w, "  events:             %d received, %d missed, %d duplicates, %d reordered, %d snapshots, %d sockets behind at the end\n",
		r.Events, r.Missed, r.Duplicates, r.Reordered, r.Snapshots, r.Behind)
	fmt.Fprintf(w, "  reconnects:         %d sockets dropped, %d reconnects in %d attempts\n", r.Dropped, r.Reconnects, r.Attempts)
	fmt.Fprintf(w, "  greeted by:         %s at the first connect; %s at the reconnects\n", fmtCounts(r.InstancesBefore), fmtCounts(r.InstancesAfter))
	fmt.Fprintf(w, "  on B:               %d errors and disconnects: dial errors %s; closes %s; error frames %s\n", r.ErrorsB, fmtCounts(r.DialErrorsB), fmtCounts(r.ClosesB), fmtCounts(r.ErrorFramesB))
	fmt.Fprintf(w, "  writes:             %d ok, failed tries %s (retried under their Idempotency-Key; gave_up: not); latency p50/p99 before %.1f/%.1f ms, during the storm %.1f/%.1f ms\n",
		r.Writes, fmtCounts(r.WriteErrors), r.WriteBefore.P50ms, r.WriteBefore.P99ms, r.WriteStorm.P50ms, r.WriteStorm.P99ms)
	p := r.Postgres
	fmt.Fprintf(w, "  Postgres:           %.0f xact/s before, %.0f during the storm (peak %.0f over 1 s, %d in all), rows returned %.0f/s -> %.0f/s, backends peak %d\n",
		p.XactPerSBefore, p.XactPerSStorm, p.XactPerSPeak, p.XactStorm, p.TupRetPerSBefore, p.TupRetPerSStorm, p.BackendsPeak)
	fmt.Fprintf(w, "  kernel:             %d connections dropped at full listen queues after the kill (TcpExt ListenOverflows, machine-wide; each is a SYN retried 1 s, 3 s, ... later)\n", r.ListenOverflows)
	if r.ServerB != nil {
		fmt.Fprintf(w, "  B's counters:       %s\n", fmtFloats(r.ServerB))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

func fmtFloats(m map[string]float64) string {
	var parts []string
	for _, k := range stormMetrics {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %+.0f", strings.TrimPrefix(k, "tasksync_"), v))
		}
	}
	return strings.Join(parts, ", ")
}
