package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"tasksync/internal/procstat"
	"tasksync/internal/reqlog"
	"tasksync/tasks"
)

// stamps records send times by message number, for baselines whose
// messages carry only their number.
type stamps struct {
	t0 time.Time
	at []atomic.Int64
}

func newStamps(n int) *stamps  { return &stamps{t0: time.Now(), at: make([]atomic.Int64, n)} }
func (s *stamps) now() int64   { return int64(time.Since(s.t0)) }
func (s *stamps) mark(n int64) { s.at[n].Store(s.now()) }
func (s *stamps) parse(p string) (int64, bool) {
	n, err := strconv.ParseInt(p, 10, 64)
	return n, err == nil && s.valid(n)
}
func (s *stamps) valid(n int64) bool { return n >= 0 && n < int64(len(s.at)) && s.at[n].Load() != 0 }

// paced calls fn(i) at rate per second until d has passed or ctx ends; a
// late call is made at once, so the mean rate holds.
func paced(ctx context.Context, rate float64, d time.Duration, fn func(i int64) error) error {
	interval := float64(time.Second) / rate
	start := time.Now()
	for i := int64(0); time.Since(start) < d; i++ {
		if w := time.Until(start.Add(time.Duration(float64(i) * interval))); w > 0 && !sleepCtx(ctx, w) {
			return ctx.Err()
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// notifyResult is the JSON report of `loadgen notify`.
type notifyResult struct {
	Tool     string         `json:"tool"`
	Label    string         `json:"label"`
	Mode     string         `json:"mode"` // notify | insert+notify | task
	Rate     float64        `json:"rate"`
	WindowS  float64        `json:"window_s"`
	Sent     int64          `json:"sent"`
	Received int64          `json:"received"`
	Latency  latencySummary `json:"latency"`
	// PostgresUsPerTx is the CPU every Postgres process used in the window
	// per transaction sent (the sender's and listener's backends, the WAL
	// writer; -1: not known).
	PostgresUsPerTx float64 `json:"postgres_us_per_tx"`
}

// runNotify measures raw NOTIFY -> LISTEN latency with pgx: one connection
// LISTENs, another sends pg_notify (in autocommit, or in one transaction
// with a single-row INSERT with --insert) at --rate; the payload is the
// message number and the latency is taken on this process's clock.
//
// --task sends tasksync's own create instead (tasks.CreateStatement, in
// autocommit as the server sends a lone create, for a user of its own) on
// a database migrated by the server, and listens where the servers listen:
// the same transaction, change-log trigger and notification, without the
// server. The server's own share of scenario (b) is its latency minus
// this one.
func runNotify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	db := fs.String("db", "", "Postgres URL of a scratch database (loopback only)")
	rate := fs.Float64("rate", 200, "notifications per second")
	dur := fs.Duration("duration", 10*time.Second, "measured window")
	warm := fs.Duration("warmup", time.Second, "unmeasured lead-in")
	insert := fs.Bool("insert", false, "INSERT a row and pg_notify in one transaction (as a task write does)")
	task := fs.Bool("task", false, "run tasksync's own create statement (its change-log trigger notifies) on a migrated database")
	label := fs.String("label", "notify", "name recorded in the JSON")
	jsonPath := fs.String("json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopbackURL(*db); err != nil {
		return fmt.Errorf("--db: %w", err)
	}
	if *rate <= 0 || *rate > 100_000 || *dur <= 0 || *dur > time.Hour {
		return errors.New("--rate must be in (0, 100000] and --duration in (0, 1h]")
	}
	if *insert && *task {
		return errors.New("--insert and --task are two different baselines: pick one")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	listener, err := pgx.Connect(cctx, *db)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer listener.Close(context.Background())
	cctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	sender, err := pgx.Connect(cctx, *db)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer sender.Close(context.Background())

	channel := "lg_notify_" + strings.ToLower(reqlog.NewID()[:8])
	// --task: a user of this run's own, so that its change numbers are
	// 1, 2, 3, ...: message i is the notification of seq i+1.
	user := "lg-notify-" + strings.ToLower(reqlog.NewID()[:8])
	if *task {
		channel = taskEventsChannel
	}
	if _, err := listener.Exec(ctx, "LISTEN "+channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if *insert {
		if _, err := sender.Exec(ctx, `CREATE TABLE IF NOT EXISTS lg_notify_bench (id bigserial PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	total := int(math.Ceil(*rate*(*dur+*warm).Seconds())) + 16
	st := newStamps(total)
	parse := st.parse
	if *task {
		parse = func(p string) (int64, bool) {
			seq, ok := taskEventSeq(p, user)
			return seq - 1, ok && st.valid(seq-1)
		}
	}
	var h hist
	var winFrom atomic.Int64
	winFrom.Store(math.MaxInt64)
	var received atomic.Int64
	lctx, stopListen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			n, err := listener.WaitForNotification(lctx)
			if err != nil {
				return
			}
			now := st.now()
			if i, ok := parse(n.Payload); ok {
				if at := st.at[i].Load(); at >= winFrom.Load() {
					received.Add(1)
					h.record(time.Duration(now - at))
				}
			}
		}
	}()
	var sent atomic.Int64
	var sends atomic.Int64 // every send so far: the --task user's seq
	send := func(i int64) error {
		if *task {
			// The warm-up may send one more than the window's
			// numbering skips: the stamp goes by the change's seq.
			i = sends.Add(1) - 1
		}
		if i >= int64(total) {
			return nil
		}
		p := strconv.FormatInt(i, 10)
		st.mark(i)
		if st.at[i].Load() >= winFrom.Load() {
			sent.Add(1)
		}
		if *task {
			_, err := sender.Exec(ctx, tasks.CreateStatement, "socket", "lg-notify", user, "lg "+p, "", false, "medium", []string{},
				nil, nil, nil, nil, nil)
			return err
		}
		if *insert {
			return pgx.BeginFunc(ctx, sender, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO lg_notify_bench (payload) VALUES ($1)`, p); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, p)
				return err
			})
		}
		_, err := sender.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, p)
		return err
	}
	err = paced(ctx, *rate, *warm, send)
	var start time.Time
	pgFrom, pgTo := time.Duration(-1), time.Duration(-1)
	if err == nil {
		if d, _, perr := procstat.CPUOf("postgres"); perr == nil {
			pgFrom = d
		}
		start = time.Now()
		winFrom.Store(st.now())
		base := int64(math.Ceil(*rate * warm.Seconds()))
		err = paced(ctx, *rate, *dur, func(i int64) error { return send(base + i) })
		// (before the connections close: a backend's CPU time goes with it)
		if d, _, perr := procstat.CPUOf("postgres"); perr == nil {
			pgTo = d
		}
	}
	window := time.Since(start)
	// Wait for the last notifications.
	deadline := time.Now().Add(2 * time.Second)
	for received.Load() < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stopListen()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	mode := "notify"
	switch {
	case *insert:
		mode = "insert+notify"
	case *task:
		mode = "task"
	}
	res := notifyResult{Tool: "loadgen notify", Label: *label, Mode: mode, Rate: *rate, WindowS: round3(window.Seconds()),
		Sent: sent.Load(), Received: received.Load(), Latency: h.summary(), PostgresUsPerTx: -1}
	if pgFrom >= 0 && pgTo >= pgFrom && res.Sent > 0 {
		res.PostgresUsPerTx = round3(float64((pgTo - pgFrom).Microseconds()) / float64(res.Sent))
	}
	fmt.Fprintf(stdout, "== loadgen notify %s: %s at %.0f/s, %d sent, %d received: %s; Postgres CPU %.0f us a transaction\n",
		res.Label, mode, res.Rate, res.Sent, res.Received, fmtLat(res.Latency), res.PostgresUsPerTx)
	return writeJSON(*jsonPath, res)
}

// taskEventsChannel is where tasksync's change-log trigger notifies
// (migrations 00003 and 00007; realtime's listener listens there).
const taskEventsChannel = "tasksync_events"

// taskEventSeq returns the seq of a change-log notification of user:
// inline, e<seq>:<user id length>:<user id>:..., or a pointer, <seq>:<user
// id> (docs/ARCHITECTURE.md).
func taskEventSeq(payload, user string) (int64, bool) {
	inline := strings.HasPrefix(payload, "e")
	rest := strings.TrimPrefix(payload, "e")
	seqText, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		return 0, false
	}
	if !inline {
		return seq, rest == user
	}
	n, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	l, err := strconv.Atoi(n)
	if err != nil || l < 0 || l > len(rest) {
		return 0, false
	}
	return seq, rest[:l] == user && strings.HasPrefix(rest[l:], ":")
}

// redisResult is the JSON report of `loadgen redis`.
type redisResult struct {
	Tool  string `json:"tool"`
	Label string `json:"label"`
	// Paced: PUBLISH at a fixed rate, latency to the subscriber.
	Paced struct {
		Rate     float64        `json:"rate"`
		Received int64          `json:"received"`
		Latency  latencySummary `json:"latency"`
	} `json:"paced"`
	// Max: publishers each PUBLISH as soon as the previous one returned.
	Max struct {
		Publishers int            `json:"publishers"`
		WindowS    float64        `json:"window_s"`
		Received   int64          `json:"received"`
		PerSecond  float64        `json:"received_per_second"`
		Latency    latencySummary `json:"latency"`
	} `json:"max"`
}

// runRedis measures a Redis PUBLISH -> SUBSCRIBE round trip with go-redis:
// paced latency, then the rate one (or --publishers) closed-loop publishers
// reach.
func runRedis(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("redis", flag.ContinueOnError)
	rurl := fs.String("redis", "redis://127.0.0.1:6379/0", "Redis URL (loopback only)")
	rate := fs.Float64("rate", 200, "paced phase: messages per second")
	dur := fs.Duration("duration", 5*time.Second, "paced phase length")
	maxDur := fs.Duration("max-duration", 5*time.Second, "closed-loop phase length")
	pubs := fs.Int("publishers", 1, "closed-loop publishers")
	label := fs.String("label", "redis", "name recorded in the JSON")
	jsonPath := fs.String("json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopbackURL(*rurl); err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	if *rate <= 0 || *dur <= 0 || *dur > time.Hour || *maxDur <= 0 || *maxDur > time.Hour || *pubs < 1 || *pubs > 256 {
		return errors.New("bad --rate, --duration, --max-duration or --publishers")
	}
	opts, err := redis.ParseURL(*rurl)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	channel := "lg-redis-" + strings.ToLower(reqlog.NewID()[:8])
	ps := rdb.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	msgs := ps.Channel(redis.WithChannelSize(1 << 16))

	const bound = 5_000_000
	st := newStamps(bound)
	var paceH, maxH hist
	var phase atomic.Int32 // 0 paced, 1 max
	var gotPaced, gotMax atomic.Int64
	rctx, stopRecv := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-msgs:
				now := st.now()
				if i, ok := st.parse(m.Payload); ok {
					d := time.Duration(now - st.at[i].Load())
					if phase.Load() == 0 {
						gotPaced.Add(1)
						paceH.record(d)
					} else {
						gotMax.Add(1)
						maxH.record(d)
					}
				}
			case <-rctx.Done():
				return
			}
		}
	}()
	var next atomic.Int64
	publish := func() error {
		i := next.Add(1) - 1
		if i >= bound {
			return errors.New("message bound reached")
		}
		st.mark(i)
		return rdb.Publish(ctx, channel, strconv.FormatInt(i, 10)).Err()
	}
	if err := paced(ctx, *rate, *dur, func(int64) error { return publish() }); err != nil {
		stopRecv()
		return err
	}
	time.Sleep(200 * time.Millisecond)
	phase.Store(1)
	start := time.Now()
	var pwg sync.WaitGroup
	var perr atomic.Value
	for p := 0; p < *pubs; p++ {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for time.Since(start) < *maxDur && ctx.Err() == nil {
				if err := publish(); err != nil {
					perr.Store(err)
					return
				}
			}
		}()
	}
	pwg.Wait()
	window := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	stopRecv()
	wg.Wait()
	if e, ok := perr.Load().(error); ok {
		return fmt.Errorf("publish: %w", e)
	}
	var res redisResult
	res.Tool, res.Label = "loadgen redis", *label
	res.Paced.Rate, res.Paced.Received, res.Paced.Latency = *rate, gotPaced.Load(), paceH.summary()
	res.Max.Publishers, res.Max.WindowS, res.Max.Received, res.Max.Latency = *pubs, round3(window.Seconds()), gotMax.Load(), maxH.summary()
	res.Max.PerSecond = round3(float64(res.Max.Received) / window.Seconds())
	fmt.Fprintf(stdout, "== loadgen redis %s: paced %.0f/s: %s\n", res.Label, res.Paced.Rate, fmtLat(res.Paced.Latency))
	fmt.Fprintf(stdout, "   closed loop, %d publisher(s): %.0f/s: %s\n", res.Max.Publishers, res.Max.PerSecond, fmtLat(res.Max.Latency))
	return writeJSON(*jsonPath, res)
}
