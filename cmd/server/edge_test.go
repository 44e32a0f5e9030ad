package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"tasksync/internal/openaitest"
)

// slowPost sends a chunked POST whose body trickles in one byte per tick
// and never ends, then reads whatever the server answers until the server
// closes the connection or bound passes. It returns the status line (empty
// if none came) and whether the server closed the connection in time.
func slowPost(addr, path, token string, tick, bound time.Duration) (status string, closed bool, err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
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
		for i := 0; ; i++ {
			b := `{"title":"` + strings.Repeat("x", 1000) + `"}`
			if _, err := fmt.Fprintf(conn, "1\r\n%c\r\n", b[i%len(b)]); err != nil {
				return // the server closed the connection
			}
			select {
			case <-answered:
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

// Defect 4: 300 chunked POSTs trickling their bodies, half without a
// token, half with one, are all answered and closed by the server within
// HTTP_BODY_TIMEOUT (plus slack), and the server's goroutines go back to
// what they were. Unauthenticated ones get their 401 at once.
func TestSlowBodiesAreCutOff(t *testing.T) {
	// Not parallel: it counts the process's goroutines, and parallel tests
	// wait until the sequential ones are done.
	env := newTestEnv(t)
	const bodyTimeout = 500 * time.Millisecond
	a := env.start(env.config(map[string]string{"HTTP_BODY_TIMEOUT": bodyTimeout.String(), "LOG_LEVEL": "error"}))
	addr := strings.TrimPrefix(a.URL, "http://")
	if code := a.api(t, "slow0", "GET", "/api/slow0/tasks", nil, nil); code != 200 {
		t.Fatalf("warm-up: %d", code)
	}
	http.DefaultClient.CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	const n = 300
	bound := bodyTimeout + 15*time.Second // the server's bound, and slack for a loaded machine
	type result struct {
		status string
		closed bool
		err    error
		took   time.Duration
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		user := fmt.Sprintf("slow%d", i%10)
		token := ""
		if i%2 == 1 {
			token = tok(t, user, time.Hour)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			status, closed, err := slowPost(addr, "/api/"+user+"/tasks", token, 100*time.Millisecond, bound)
			results[i] = result{status, closed, err, time.Since(start)}
		}()
	}
	wg.Wait()

	var slowest time.Duration
	answered := map[string]int{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("connection %d: %v", i, r.err)
		}
		if !r.closed {
			t.Fatalf("connection %d (token %v) still open after %s; status %q", i, i%2 == 1, bound, r.status)
		}
		// Answered before closing, when the answer was not lost to a reset.
		if r.status != "" {
			want := "HTTP/1.1 401"
			if i%2 == 1 {
				want = "HTTP/1.1 400" // the body did not arrive in time
			}
			if !strings.HasPrefix(r.status, want) {
				t.Errorf("connection %d: %q, want %s", i, r.status, want)
			}
		}
		answered[r.status]++
		slowest = max(slowest, r.took)
	}
	t.Logf("%d connections closed, slowest after %s; answers %v", n, slowest, answered)
	eventually(t, "server goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseline+5
	})
}

// A body that arrives slowly but in time is served, and the connection is
// kept alive after it; a streamed chat answer (SSE) runs longer than
// HTTP_BODY_TIMEOUT without being cut: the deadline covers the body only.
func TestBodyDeadlineSparesTimelyBodiesAndLongAnswers(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)

	// A body in four pieces, 100 ms apart, well inside 10 s.
	a := env.start(env.config(map[string]string{"HTTP_BODY_TIMEOUT": "10s"}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/ana/tasks HTTP/1.1\r\nHost: tasksync\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", tok(t, "ana", time.Hour))
	for _, piece := range []string{`{"tit`, `le":"sl`, `owly but`, ` surely"}`} {
		fmt.Fprintf(conn, "%x\r\n%s\r\n", len(piece), piece)
		time.Sleep(100 * time.Millisecond) // pacing a slow client, not waiting for the server
	}
	fmt.Fprint(conn, "0\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || created["title"] != "slowly but surely" || res.Close {
		t.Fatalf("slow body in time: %d %v, close %v", res.StatusCode, created, res.Close)
	}
	// The same connection serves the next request.
	fmt.Fprintf(conn, "GET /api/ana/tasks HTTP/1.1\r\nHost: tasksync\r\nAuthorization: Bearer %s\r\n\r\n", tok(t, "ana", time.Hour))
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("second request on the connection: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("second request: %d", res.StatusCode)
	}

	// SSE: the model holds its answer until well past the body deadline.
	const bodyTimeout = 300 * time.Millisecond
	fake := openaitest.New(t)
	b := env.start(env.config(chatConfig(fake, map[string]string{"HTTP_BODY_TIMEOUT": bodyTimeout.String()})))
	held := fake.Push(&openaitest.Reply{Text: []string{"First", " second"}, Cut: openaitest.CutHold, CutAfter: 1, Release: make(chan struct{})})
	req, _ := http.NewRequest("POST", b.URL+"/api/ana/chat", strings.NewReader(`{"message":"take your time"}`))
	req.Header.Set("Authorization", "Bearer "+tok(t, "ana", time.Hour))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	sres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	sc := bufio.NewScanner(sres.Body)
	var events []string
	for sc.Scan() {
		name, ok := strings.CutPrefix(sc.Text(), "event: ")
		if !ok {
			continue
		}
		events = append(events, name)
		if name == "chat.delta" && len(events) == 2 {
			// Let the body deadline pass well before the answer goes on:
			// it bounds the body only, never the response.
			<-time.After(3 * bodyTimeout)
			close(held.Release)
		}
		if name == "chat.done" || name == "chat.error" {
			break
		}
	}
	if len(events) < 3 || events[len(events)-1] != "chat.done" {
		t.Fatalf("SSE events %v (err %v), want the turn to finish with chat.done", events, sc.Err())
	}
}

// Defect 8: without CORS_ALLOWED_ORIGINS only the server's own origin may
// call from a browser: another origin's preflight and simple request get
// no CORS headers (rs/cors alone would answer "*").
func TestCORSUnsetMeansSameOriginOnly(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	corsHeaders := func(h http.Header) []string {
		var out []string
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				out = append(out, k+": "+h.Get(k))
			}
		}
		return out
	}

	req, _ := http.NewRequest(http.MethodOptions, a.URL+"/api/alice/tasks", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if h := corsHeaders(res.Header); len(h) > 0 {
		t.Errorf("foreign preflight got %v", h)
	}

	req, _ = http.NewRequest(http.MethodGet, a.URL+"/api/alice/tasks", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Authorization", "Bearer "+tok(t, "alice", time.Hour))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if h := corsHeaders(res.Header); res.StatusCode != 200 || len(h) > 0 {
		t.Errorf("foreign simple request: %d, %v", res.StatusCode, h)
	}
}
