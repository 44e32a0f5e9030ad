package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"tasksync/internal/httpjson"
)

// slowTick is how often a slow body sends its next byte (the issue's
// repro: 1 byte every 2 s).
const slowTick = 2 * time.Second

// slowSlack is added to the body timeout before a connection still open
// counts as a broken promise: a loaded machine is not what is measured.
const slowSlack = 30 * time.Second

// scenarioSlowBodies is issue 9 row 4. --slow-conns connections to a fresh
// instance each send a chunked POST /api/{user}/tasks whose body trickles
// in one byte every 2 s and never ends; half without a token, half with
// one. The instance has HTTP_BODY_TIMEOUT at the server's default (30 s;
// quick: 3 s). Every connection must be closed by the server within the
// timeout plus 30 s of slack (unauthenticated ones are refused before
// their body is read: 401 at once; authenticated ones get 400 when the
// body is late), and the server's goroutines (go_goroutines on /metrics)
// must return to their baseline.
func (h *harness) scenarioSlowBodies(ctx context.Context, sr *scenarioResult) error {
	sz := h.cfg.Sizes
	timeout := httpjson.DefaultBodyTimeout
	var env []string
	if sz.BodyTimeout > 0 {
		timeout = sz.BodyTimeout
		env = append(env, "HTTP_BODY_TIMEOUT="+sz.BodyTimeout.String())
	}
	users := make([]string, 10)
	for i := range users {
		users[i] = h.scenarioUser(fmt.Sprint("slow", i))
	}
	if err := h.mintTokens(ctx, users...); err != nil {
		return err
	}
	in, err := h.scenarioInstance(ctx, "slow", env...)
	if err != nil {
		return err
	}
	defer h.endInstance(sr, in)
	goroutines := func() (float64, error) {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := in.metrics(mctx, "go_goroutines")
		if err != nil {
			return 0, err
		}
		g, ok := m["go_goroutines"]
		if !ok {
			return 0, errors.New("no go_goroutines on /metrics")
		}
		return g, nil
	}
	// The baseline is taken once the count has settled: background
	// goroutines start after the instance is ready (River's leader starts
	// its maintenance services, each after a random delay of up to 1 s).
	baseline, err := goroutines()
	if err != nil {
		return err
	}
	steady := 0
	h.waitFor(ctx, 15*time.Second, "the slow instance's goroutine count to settle", func() bool {
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return true
		}
		g, err := goroutines()
		if err != nil {
			return false
		}
		if g != baseline {
			baseline, steady = g, 0
			return false
		}
		steady++
		return steady >= 8 // 2 s unchanged
	})

	addr := fmt.Sprintf("127.0.0.1:%d", in.port)
	bound := timeout + slowSlack
	type outcome struct {
		status string
		closed bool
		err    error
		took   time.Duration
	}
	results := make([]outcome, sz.SlowConns)
	var peak float64
	var conns sync.WaitGroup
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for sleepCtx(sampleCtx, 500*time.Millisecond) {
			if g, err := goroutines(); err == nil {
				peak = max(peak, g)
			}
		}
	})
	for i := range results {
		token := ""
		if i%2 == 1 {
			token = h.tokens[users[i%len(users)]]
		}
		conns.Go(func() {
			start := time.Now()
			status, closed, err := slowPost(ctx, addr, "/api/"+users[i%len(users)]+"/tasks", token, slowTick, bound)
			results[i] = outcome{status, closed, err, time.Since(start)}
		})
	}
	conns.Wait()
	stopSampling()
	sampler.Wait()

	var unauthTook, authTook []time.Duration
	var statuses [2]counters
	open, failed := 0, 0
	for i, r := range results {
		auth := i%2 == 1
		kind := map[bool]string{false: "unauthenticated", true: "authenticated"}[auth]
		status := r.status
		if status == "" {
			status = "no answer"
		} else if f := strings.Fields(status); len(f) >= 2 {
			status = f[1]
		}
		statuses[i%2].add(status, 1)
		switch {
		case r.err != nil:
			failed++
			sr.example("connection %d (%s): %v", i, kind, r.err)
			continue
		case !r.closed:
			open++
			sr.example("connection %d (%s): still open after %s; answered %q", i, kind, bound, r.status)
			continue
		}
		if auth {
			authTook = append(authTook, r.took)
		} else {
			unauthTook = append(unauthTook, r.took)
		}
		want := map[bool]string{false: "401", true: "400"}[auth]
		if status != "no answer" && status != want {
			sr.fail("%s connection %d answered %q, want %s", kind, i, r.status, want)
		}
	}

	// The goroutines the connections held go away.
	var after float64
	back := h.waitFor(ctx, time.Minute, "the slow instance's goroutines back to the baseline", func() bool {
		g, err := goroutines()
		after = g
		return err == nil && g <= baseline+5
	})

	sr.row("connections", len(results), fmt.Sprintf("chunked POST /api/{user}/tasks, 1 byte every %s, half with a token; HTTP_BODY_TIMEOUT %s", slowTick, timeout))
	sr.row("closed by the server in time", fmt.Sprintf("%d/%d", len(unauthTook)+len(authTook), len(results)), fmt.Sprintf("within %s (the timeout + %s of slack); still open %d, could not connect %d", bound, slowSlack, open, failed))
	sr.row("  unauthenticated: closed after", durations(unauthTook), "answers "+kv(statuses[0].snapshot())+" (refused before the body is read)")
	sr.row("  authenticated: closed after", durations(authTook), "answers "+kv(statuses[1].snapshot())+" (the body did not arrive in time)")
	sr.row("server goroutines", fmt.Sprintf("%.0f -> %.0f", baseline, after), fmt.Sprintf("baseline -> after (go_goroutines); peak sampled %.0f; must return to the baseline (+5)", peak))
	sr.figure("connections", len(results))
	sr.figure("body_timeout", timeout.String())
	sr.figure("closed_in_time", len(unauthTook)+len(authTook))
	sr.figure("unauth_close_p50_max", durations(unauthTook))
	sr.figure("auth_close_p50_max", durations(authTook))
	sr.figure("auth_close_max_seconds", round1(maxDur(authTook).Seconds()))
	sr.figure("unauth_statuses", statuses[0].snapshot())
	sr.figure("auth_statuses", statuses[1].snapshot())
	sr.figure("goroutines_baseline", baseline)
	sr.figure("goroutines_peak", peak)
	sr.figure("goroutines_after", after)
	if open > 0 {
		sr.fail("%d of %d connections still open %s after they started (HTTP_BODY_TIMEOUT %s)", open, len(results), bound, timeout)
	}
	if failed > 0 {
		sr.fail("%d of %d connections failed before the server answered", failed, len(results))
	}
	if !back {
		sr.fail("the server's goroutines stayed at %.0f, baseline %.0f", after, baseline)
	}
	return nil
}

// slowPost sends a chunked POST whose body trickles in one byte per tick
// and never ends, then reads whatever the server answers until the server
// closes the connection or bound passes. It returns the status line (empty
// if none came) and whether the server closed the connection in time.
func slowPost(ctx context.Context, addr, path, token string, tick, bound time.Duration) (status string, closed bool, err error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return "", false, err
	}
	defer conn.Close()
	head := "POST " + path + " HTTP/1.1\r\nHost: tasksync\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		return "", false, err
	}
	answered := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		t := time.NewTicker(tick)
		defer t.Stop()
		body := `{"title":"` + strings.Repeat("x", 1000) + `"}`
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(conn, "1\r\n%c\r\n", body[i%len(body)]); err != nil {
				return // the server closed the connection
			}
			select {
			case <-answered:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() { <-writerDone }()
	defer close(answered)
	_ = conn.SetReadDeadline(time.Now().Add(bound))
	br := bufio.NewReader(conn)
	status, err = br.ReadString('\n')
	if err == nil {
		_, err = io.Copy(io.Discard, br)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return strings.TrimSpace(status), false, nil
	}
	// EOF, or a reset because the server closed with our bytes unread:
	// either way the server let go of the connection.
	return strings.TrimSpace(status), true, nil
}
