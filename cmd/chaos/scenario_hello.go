package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"
)

// helloSeedTasks is how many tasks each user of hello-first has before its
// sockets connect, so that ?since= has history to replay.
const helloSeedTasks = 20

// scenarioHello is issue 9 row 2. --hello-sockets sockets connect, spread
// over --hello-users users and two fresh instances, a third of them with
// ?since=<a seq 10 back>, while the same users' changes are written with
// SQL at --hello-rate per second; once with Redis up and once with the
// private Redis killed before the sockets connect (started again after the
// check). Every frame of every socket is checked in arrival order: the
// first must be hello, and the task events must run from hello.seq+1 (or
// since+1) with no gap and no duplicate up to the user's last write. Must
// be 0 sockets out of order in both runs.
func (h *harness) scenarioHello(ctx context.Context, sr *scenarioResult) error {
	pool, err := h.scenarioPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	a, err := h.scenarioInstance(ctx, "hello-a")
	if err != nil {
		return err
	}
	defer h.endInstance(sr, a)
	b, err := h.scenarioInstance(ctx, "hello-b")
	if err != nil {
		return err
	}
	defer h.endInstance(sr, b)
	for run, redisDown := range []bool{false, true} {
		if err := h.helloRun(ctx, sr, pool, [2]*instance{a, b}, run, redisDown); err != nil {
			return err
		}
	}
	return nil
}

// helloRun is one of the two runs.
func (h *harness) helloRun(ctx context.Context, sr *scenarioResult, pool *pgxpool.Pool, ins [2]*instance, run int, redisDown bool) error {
	sz := h.cfg.Sizes
	label := "Redis up"
	if redisDown {
		label = "Redis down"
	}
	users := make([]string, sz.HelloUsers)
	for i := range users {
		users[i] = h.scenarioUser(fmt.Sprintf("hello%d-u%d", run, i))
	}
	if err := h.mintTokens(ctx, users...); err != nil {
		return err
	}
	taskIDs := map[string][]int64{}
	base := map[string]int64{}
	for _, u := range users {
		rows, err := pool.Query(ctx, `INSERT INTO tasks (user_id, title) SELECT $1, 'hello seed ' || g FROM generate_series(1, $2) AS g RETURNING id`, u, helloSeedTasks)
		if err != nil {
			return fmt.Errorf("seed %s: %w", u, err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			taskIDs[u] = append(taskIDs[u], id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("seed %s: %w", u, err)
		}
		if base[u], err = userSeq(ctx, pool, u); err != nil {
			return err
		}
	}

	if redisDown {
		if err := h.runHook(ctx, "redis-kill"); err != nil {
			return err
		}
		defer func() {
			if err := h.runHook(context.WithoutCancel(ctx), "redis-start"); err != nil {
				sr.fail("the private Redis did not start again: %v", err)
			}
		}()
	}

	// The writes: inserts and updates of the users' tasks, at the rate,
	// until the sockets are all open and a second more.
	writeCtx, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	var written, writeErrs atomic.Int64
	var writers sync.WaitGroup
	lim := rate.NewLimiter(rate.Limit(sz.HelloRate), 10)
	writeStart := time.Now()
	// Enough connections that the commit latency (every commit that
	// notifies takes one database-wide lock) never holds the rate back.
	for w := range 16 {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(run), uint64(w)))
			for n := 0; lim.Wait(writeCtx) == nil; n++ {
				u := users[rng.IntN(len(users))]
				var err error
				if rng.IntN(4) == 0 {
					ids := taskIDs[u]
					_, err = pool.Exec(writeCtx, `UPDATE tasks SET title = $2 WHERE id = $1`, ids[rng.IntN(len(ids))], fmt.Sprintf("hello update %d-%d", w, n))
				} else {
					_, err = pool.Exec(writeCtx, `INSERT INTO tasks (user_id, title) VALUES ($1, $2)`, u, fmt.Sprintf("hello write %d-%d", w, n))
				}
				switch {
				case err == nil:
					written.Add(1)
				case writeCtx.Err() == nil:
					writeErrs.Add(1)
				}
			}
		})
	}
	sleepCtx(ctx, 300*time.Millisecond)

	// The sockets, 25 connecting at a time.
	sockets := make([]*orderCheck, sz.HelloSockets)
	var dialFailed atomic.Int64
	var dialers, readers sync.WaitGroup
	sockCtx, closeSockets := context.WithCancel(ctx)
	defer func() {
		closeSockets()
		readers.Wait()
	}()
	next := atomic.Int64{}
	for range 25 {
		dialers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sockets) {
					return
				}
				u := users[i%len(users)]
				in := ins[i%2]
				c := &orderCheck{user: u, where: in.name, since: -1}
				sockets[i] = c
				since := noSince
				if i%3 == 0 {
					c.since = base[u] - 10
					since = strconv.FormatInt(c.since, 10)
				}
				var conn *websocket.Conn
				for attempt := 0; attempt < 5; attempt++ {
					var err error
					if conn, err = h.dial(sockCtx, in, u, since, "hello"); err == nil {
						break
					}
					c.dialErr = err.Error()
					sleepCtx(sockCtx, 200*time.Millisecond)
				}
				if conn == nil {
					dialFailed.Add(1)
					c.ended.Store(true)
					continue
				}
				c.connected = true
				readers.Go(func() { c.read(sockCtx, conn) })
			}
		})
	}
	dialers.Wait()
	sleepCtx(ctx, time.Second)
	stopWrites()
	writers.Wait()
	writeTook := time.Since(writeStart)

	// Every socket at its user's last seq, or ended.
	final := map[string]int64{}
	for _, u := range users {
		var err error
		if final[u], err = userSeq(ctx, pool, u); err != nil {
			return err
		}
	}
	h.waitFor(ctx, 2*time.Minute, "every hello-first socket at its user's last seq", func() bool {
		for _, c := range sockets {
			if !c.settled(final[c.user]) {
				return false
			}
		}
		return true
	})

	var notHello, notContiguous, incomplete, frames int
	var closes counters
	for i, c := range sockets {
		v := c.verdict(final[c.user])
		frames += int(c.frames.Load())
		if !c.connected {
			closes.add("never connected", 1)
			sr.example("%s socket %d of %s on %s: could not connect: %s", label, i, c.user, c.where, c.dialErr)
			continue
		}
		switch v.kind {
		case "hello":
			notHello++
		case "order":
			notContiguous++
		case "incomplete":
			incomplete++
		}
		if v.kind != "" {
			sr.example("%s socket %d of %s on %s (since %s): %s", label, i, c.user, c.where, sinceText(c.since), v.text)
		}
		if code := c.closeCode(); code != "" {
			closes.add(code, 1)
		}
	}
	slug := strings.ReplaceAll(strings.ToLower(label), " ", "_")
	sr.row("sockets ("+label+")", len(sockets), fmt.Sprintf("%d users, 2 instances, %d with ?since=; %d frames read in order", len(users), (len(sockets)+2)/3, frames))
	sr.row("  changes written meanwhile", written.Load(), fmt.Sprintf("SQL inserts and updates, %.0f/s over %.1fs; write errors %d", float64(written.Load())/writeTook.Seconds(), writeTook.Seconds(), writeErrs.Load()))
	sr.row("  hello not first", notHello, "must be 0")
	sr.row("  events not contiguous", notContiguous, "from hello.seq+1 or since+1: a gap, a duplicate, a snapshot; must be 0")
	sr.row("  sockets short of the last write", incomplete, fmt.Sprintf("closed or behind after 2 minutes; must be 0; closes: %s; could not connect: %d", kv(closes.snapshot()), dialFailed.Load()))
	sr.figure(slug+"_sockets", len(sockets))
	sr.figure(slug+"_writes", written.Load())
	sr.figure(slug+"_write_rate", round1(float64(written.Load())/writeTook.Seconds()))
	sr.figure(slug+"_hello_not_first", notHello)
	sr.figure(slug+"_not_contiguous", notContiguous)
	sr.figure(slug+"_incomplete", incomplete)
	sr.figure(slug+"_could_not_connect", dialFailed.Load())
	if bad := notHello + notContiguous + incomplete; bad > 0 {
		sr.fail("%s: %d of %d sockets out of order or incomplete (hello not first %d, not contiguous %d, short %d)", label, bad, len(sockets), notHello, notContiguous, incomplete)
	}
	if n := dialFailed.Load(); n > 0 {
		sr.fail("%s: %d sockets could not connect in 5 attempts", label, n)
	}
	if n := writeErrs.Load(); n > 0 {
		return fmt.Errorf("%s: %d of the scenario's own SQL writes failed", label, n)
	}
	return nil
}

func sinceText(since int64) string {
	if since < 0 {
		return "none"
	}
	return strconv.FormatInt(since, 10)
}

// orderCheck follows one socket's frames in arrival order: hello first,
// then task events contiguous from hello.seq+1 (or since+1). It keeps the
// first violation and the first frames, not every frame.
type orderCheck struct {
	user      string
	where     string
	since     int64 // -1: connected without ?since=
	dialErr   string
	connected bool

	frames   atomic.Int64
	helloSeq atomic.Int64
	last     atomic.Int64 // the last event seq seen in order
	ended    atomic.Bool

	mu      sync.Mutex
	hello   bool
	next    int64 // the event seq due next; 0 before hello
	bad     string
	badKind string
	firsts  []string
	endErr  error
}

// maxFirsts bounds the frames kept of each socket, for examples.
const maxFirsts = 6

func (c *orderCheck) read(ctx context.Context, conn *websocket.Conn) {
	defer conn.CloseNow()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			c.mu.Lock()
			if ctx.Err() == nil {
				c.endErr = err
			}
			c.mu.Unlock()
			c.ended.Store(true)
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = frame{Type: "undecodable"}
		}
		c.see(&f)
	}
}

// see is told each frame in arrival order.
func (c *orderCheck) see(f *frame) {
	n := c.frames.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	desc := f.Type
	if f.Seq != nil {
		desc += " " + strconv.FormatInt(*f.Seq, 10)
	}
	if len(c.firsts) < maxFirsts {
		c.firsts = append(c.firsts, desc)
	}
	violate := func(kind, format string, args ...any) {
		if c.bad == "" {
			c.badKind, c.bad = kind, fmt.Sprintf("frame %d: ", n)+fmt.Sprintf(format, args...)
		}
	}
	switch {
	case n == 1 && f.Type != "hello":
		violate("hello", "%s before hello", desc)
	case f.Type == "hello":
		if c.hello {
			violate("order", "a second hello")
			return
		}
		c.hello = true
		if f.Seq == nil {
			violate("order", "hello without seq")
			return
		}
		c.helloSeq.Store(*f.Seq)
		c.next = *f.Seq + 1
		if c.since >= 0 {
			c.next = c.since + 1
		}
		c.last.Store(c.next - 1)
	case strings.HasPrefix(f.Type, "task."):
		if c.next == 0 || f.Seq == nil {
			return // before hello: counted already
		}
		if *f.Seq != c.next {
			violate("order", "%s where seq %d was due", desc, c.next)
			return
		}
		c.next++
		c.last.Store(*f.Seq)
	case f.Type == "snapshot":
		violate("order", "a snapshot, though since %s is valid", sinceText(c.since))
	case f.Type == "undecodable":
		violate("order", "an undecodable frame")
	}
}

// settled reports whether the socket has nothing more to show: it is at
// the user's last seq, it ended, or it broke the order already.
func (c *orderCheck) settled(final int64) bool {
	if c.ended.Load() || c.last.Load() >= final {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad != ""
}

// helloVerdict is what was wrong with a socket: kind "hello", "order",
// "incomplete", or "" when nothing.
type helloVerdict struct{ kind, text string }

func (c *orderCheck) verdict(final int64) helloVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	firsts := strings.Join(c.firsts, ", ")
	switch {
	case c.bad != "":
		return helloVerdict{c.badKind, c.bad + "; first frames: " + firsts}
	case c.frames.Load() == 0:
		return helloVerdict{"incomplete", fmt.Sprintf("no frame at all (%v)", c.endErr)}
	case c.last.Load() < final:
		return helloVerdict{"incomplete", fmt.Sprintf("events up to %d, the user is at %d (%v); first frames: %s", c.last.Load(), final, c.endErr, firsts)}
	}
	return helloVerdict{}
}

// closeCode is how the socket ended before the check ("" if it did not).
func (c *orderCheck) closeCode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endErr == nil {
		return ""
	}
	return closeCode(c.endErr)
}
