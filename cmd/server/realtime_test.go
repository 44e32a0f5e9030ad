package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tasksync/internal/contract"
	"tasksync/realtime"
)

// seqs returns the seq of each event frame.
func seqs(fs []frame) []int64 {
	out := make([]int64, len(fs))
	for i, f := range fs {
		out[i] = f.seq()
	}
	return out
}

// contiguous fails unless got is exactly from, from+1, ..., from+len-1.
func contiguous(t *testing.T, who string, got []int64, from int64) {
	t.Helper()
	for i, s := range got {
		if s != from+int64(i) {
			t.Fatalf("%s: seq %d at position %d, want %d (all: %v)", who, s, i, from+int64(i), got)
		}
	}
}

func TestCrossInstanceFanOut(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))

	onA := dial(t, a.WS, "alice")
	onB := dial(t, b.WS, "alice")
	bob := dial(t, b.WS, "bob")

	// A socket mutation on A reaches alice's session on B (and A).
	reply := onA.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "from socket A", "tags": []string{"x"}}})
	if reply.typ() != "reply" || reply.task()["title"] != "from socket A" {
		t.Fatalf("create reply: %v", reply)
	}
	for _, c := range []*wsClient{onA, onB} {
		ev := c.events(1)[0]
		if ev.typ() != "task.created" || ev.seq() != 1 || ev.task()["title"] != "from socket A" {
			t.Fatalf("event: %v", ev)
		}
	}

	// A REST mutation on B reaches both.
	id := int64(reply.task()["id"].(float64))
	if code := b.api(t, "alice", "PATCH", fmt.Sprintf("/api/alice/tasks/%d", id), map[string]any{"title": "renamed over REST"}, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	for _, c := range []*wsClient{onA, onB} {
		ev := c.events(1)[0]
		if ev.typ() != "task.updated" || ev.seq() != 2 || ev.task()["title"] != "renamed over REST" || ev.task()["version"] != float64(2) {
			t.Fatalf("event: %v", ev)
		}
	}

	// Plain SQL from another program reaches both.
	if _, err := env.DB.Pool.Exec(context.Background(), `INSERT INTO tasks (user_id, title) VALUES ('alice', 'inserted by SQL')`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.DB.Pool.Exec(context.Background(), `DELETE FROM tasks WHERE user_id = 'alice' AND id = $1`, id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{onA, onB} {
		evs := c.events(2)
		if evs[0].typ() != "task.created" || evs[0].task()["title"] != "inserted by SQL" || evs[1].typ() != "task.deleted" || evs[1]["task_id"] != float64(id) {
			t.Fatalf("events: %v", evs)
		}
		contiguous(t, "alice", seqs(evs), 3)
	}

	// Bob saw none of it.
	bob.quiet()
}

func TestResumeReplaysExactlyWhatWasMissed(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))

	c := dial(t, a.WS, "carol")
	for i := range 3 {
		c.request(map[string]any{"type": "task.create", "task": map[string]any{"title": fmt.Sprint("t", i)}})
	}
	c.events(3)
	last := int64(3)
	c.conn.Close(websocket.StatusNormalClosure, "")

	// Changes while carol is away.
	var created map[string]any
	a.api(t, "carol", "POST", "/api/carol/tasks", map[string]any{"title": "while away"}, &created)
	a.api(t, "carol", "PATCH", fmt.Sprintf("/api/carol/tasks/%v/complete", created["id"]), nil, nil)
	a.api(t, "carol", "DELETE", "/api/carol/tasks/1", nil, nil)

	// Reconnect and resume with a sync frame: exactly 4, 5, 6, then synced.
	c2 := dial(t, a.WS, "carol")
	if c2.hello.seq() != 6 {
		t.Fatalf("hello seq = %v, want 6", c2.hello["seq"])
	}
	c2.send(map[string]any{"type": "sync", "id": "s1", "since": last})
	evs := c2.events(3)
	contiguous(t, "resume", seqs(evs), 4)
	if evs[0].typ() != "task.created" || evs[1].typ() != "task.updated" || evs[1].task()["completed"] != true || evs[2].typ() != "task.deleted" {
		t.Fatalf("resume events: %v", evs)
	}
	if f := c2.next("synced"); f["id"] != "s1" || f.seq() != 6 {
		t.Fatalf("synced: %v", f)
	}
	// Live events continue after the replay with no gap.
	c2.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "live"}})
	if ev := c2.events(1)[0]; ev.seq() != 7 {
		t.Fatalf("live after resume: %v", ev)
	}
	c2.quiet()

	// The same through ?since= on connect.
	c3 := dialWith(t, a.WS+"?since=5", wsOpts(t, "carol"))
	contiguous(t, "since on connect", seqs(c3.events(2)), 6)
	c3.next("synced")
	c3.quiet()

	// A since older than the retained log gets a snapshot.
	if _, err := env.DB.Pool.Exec(context.Background(), `DELETE FROM task_events WHERE user_id = 'carol' AND seq <= 4`); err != nil {
		t.Fatal(err)
	}
	snap := c2.request(map[string]any{"type": "sync", "since": 2})
	if snap.typ() != "snapshot" || snap.seq() != 7 {
		t.Fatalf("want a snapshot at seq 7, got %v", snap)
	}
	titles := map[string]bool{}
	for _, raw := range snap["tasks"].([]any) {
		titles[raw.(map[string]any)["title"].(string)] = true
	}
	if len(titles) != 4 || !titles["while away"] || !titles["live"] || titles["t0"] {
		t.Fatalf("snapshot tasks: %v", titles)
	}
	// A since from the future (another database?) also gets a snapshot.
	if f := c2.request(map[string]any{"type": "sync", "since": 99}); f.typ() != "snapshot" {
		t.Fatalf("future since: %v", f)
	}
	c2.quiet()
}

// A hole in the middle of the change log (a row pruned or deleted while
// its neighbours stay) is never skipped silently: a socket resuming across
// it gets the events before the hole, in order, then a snapshot instead of
// the rest. Read in arrival order.
func TestResumeAcrossAHoleInTheLogGetsASnapshot(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	ctx := context.Background()
	if _, err := env.DB.Pool.Exec(ctx, `INSERT INTO tasks (user_id, title) SELECT 'holey', 't' || i FROM generate_series(1, 6) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.DB.Pool.Exec(ctx, `DELETE FROM task_events WHERE user_id = 'holey' AND seq = 4`); err != nil {
		t.Fatal(err)
	}
	c := dialWith(t, a.WS+"?since=1", wsOpts(t, "holey"))
	if c.hello.seq() != 6 { // dialWith checked it came first
		t.Fatalf("hello %v, want seq 6", c.hello)
	}
	var got []int64
	for {
		f := c.next()
		switch f.typ() {
		case "presence":
			continue
		case "task.created":
			got = append(got, f.seq())
			continue
		case "snapshot":
		default:
			t.Fatalf("unexpected %v after events %v", f, got)
		}
		if fmt.Sprint(got) != "[2 3]" {
			t.Fatalf("events before the snapshot %v, want [2 3] (nothing past the hole)", got)
		}
		if f.seq() != 6 || len(f["tasks"].([]any)) != 6 || f["more"] != false {
			t.Fatalf("snapshot %v, want all 6 tasks at seq 6 in one page", f)
		}
		break
	}
	// The replay had begun, so its end is still said: synced at the
	// snapshot's seq.
	for {
		f := c.next()
		if f.typ() == "presence" {
			continue
		}
		if f.typ() != "synced" || f.seq() != 6 {
			t.Fatalf("after the snapshot %v, want synced at 6", f)
		}
		break
	}
	c.quiet()
}

func wsOpts(t testing.TB, user string) *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok(t, user, time.Hour)}}}
}

// TestListenerTerminatedMidBurst kills the LISTEN connection of instance B
// while instance A writes: every session on B still gets every event once,
// in order (B catches up from the log after reconnecting).
func TestListenerTerminatedMidBurst(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(map[string]string{"DATABASE_LISTEN_URL": env.DB.URL + "&application_name=listener-b"}))

	watchers := []*wsClient{dial(t, b.WS, "dave"), dial(t, b.WS, "dave")}
	writer := dial(t, a.WS, "dave")

	const n = 150
	var terminated sync.WaitGroup
	terminated.Add(1)
	go func() {
		defer terminated.Done()
		// Kill B's listener once a third of the burst is written.
		eventually(t, "a third of the burst", func() bool {
			var seq int64
			_ = env.DB.Pool.QueryRow(context.Background(), `SELECT coalesce(max(seq),0) FROM user_seqs WHERE user_id='dave'`).Scan(&seq)
			return seq >= n/3
		})
		var killed int
		err := env.DB.Pool.QueryRow(context.Background(), `
			SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'tasksync-listener'
			  AND backend_type = 'client backend' AND pid IN (
			    SELECT pid FROM pg_stat_activity WHERE query ILIKE 'listen%')`).Scan(&killed)
		if err != nil || killed == 0 {
			t.Errorf("terminate listener: killed %d, err %v", killed, err)
		}
	}()
	for i := range n {
		r := writer.request(map[string]any{"type": "task.create", "task": map[string]any{"title": fmt.Sprint("burst ", i)}})
		if r.typ() != "reply" {
			t.Fatalf("create %d: %v", i, r)
		}
	}
	terminated.Wait()
	for i, w := range watchers {
		contiguous(t, "watcher "+strconv.Itoa(i), seqs(w.events(n)), 1)
		w.quiet()
	}
}

// TestConcurrentWritersOneUser: sessions on two instances write at once;
// every session sees the same gap-free sequence.
func TestConcurrentWritersOneUser(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))

	var clients []*wsClient
	for i := range 6 {
		inst := a
		if i%2 == 1 {
			inst = b
		}
		clients = append(clients, dial(t, inst.WS, "erin"))
	}
	const perClient = 20
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last float64
			for j := range perClient {
				var r frame
				if j%3 == 2 && last != 0 {
					r = c.requestAsync(map[string]any{"type": "task.complete", "task_id": last})
				} else {
					r = c.requestAsync(map[string]any{"type": "task.create", "task": map[string]any{"title": fmt.Sprintf("c%d-%d", i, j)}})
					if r.typ() == "reply" {
						last = r.task()["id"].(float64)
					}
				}
				if r.typ() != "reply" {
					t.Errorf("client %d request %d: %v", i, j, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := len(clients) * perClient
	var first []int64
	for i, c := range clients {
		got := seqs(c.events(total))
		contiguous(t, "client "+strconv.Itoa(i), got, 1)
		if first == nil {
			first = got
		}
		c.quiet()
	}
}

// requestAsync is request for use from another goroutine: frames of other
// requests are left for their owners. Each client is used by one goroutine.
func (c *wsClient) requestAsync(v map[string]any) frame { return c.request(v) }

func TestIdempotentMutationAndConflict(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	c := dial(t, a.WS, "frank")

	create := map[string]any{"type": "task.create", "mutation_id": "m-1", "task": map[string]any{"title": "once"}}
	r1 := c.request(create)
	r2 := c.request(map[string]any{"type": "task.create", "mutation_id": "m-1", "task": map[string]any{"title": "once"}})
	if r1.task()["id"] != r2.task()["id"] || r2["replayed"] != true || r1["replayed"] != nil {
		t.Fatalf("retry: first %v, second %v", r1, r2)
	}
	// Same id, another request: refused.
	if r := c.request(map[string]any{"type": "task.create", "mutation_id": "m-1", "task": map[string]any{"title": "other"}}); r["code"] != "conflict" {
		t.Fatalf("reused mutation_id: %v", r)
	}
	// After a reconnect the retry still answers with the first result.
	c.conn.Close(websocket.StatusNormalClosure, "")
	c = dial(t, a.WS, "frank")
	if r := c.request(create); r.task()["id"] != r1.task()["id"] || r["replayed"] != true {
		t.Fatalf("retry after reconnect: %v", r)
	}
	var count int
	_ = env.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM tasks WHERE user_id = 'frank'`).Scan(&count)
	if count != 1 {
		t.Fatalf("%d tasks, want 1", count)
	}

	id := r1.task()["id"]
	if r := c.request(map[string]any{"type": "task.update", "task_id": id, "base_version": 1, "task": map[string]any{"title": "v2"}}); r.task()["version"] != float64(2) {
		t.Fatalf("update: %v", r)
	}
	stale := c.request(map[string]any{"type": "task.update", "task_id": id, "base_version": 1, "task": map[string]any{"title": "stale"}})
	if stale["code"] != "version_mismatch" || stale.task()["title"] != "v2" || stale.task()["version"] != float64(2) {
		t.Fatalf("stale base_version: %v", stale)
	}
}

func TestBadInputGetsDocumentedAnswers(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"WS_MAX_FRAME_BYTES": "2048", "WS_FRAME_RATE": "5", "WS_FRAME_BURST": "5"}))
	other := dial(t, a.WS, "grace")

	c := dial(t, a.WS, "grace")
	c.sendRaw([]byte(`{"type":"task.create",`))
	if f := c.next("error"); f["code"] != "bad_request" {
		t.Fatalf("malformed JSON: %v", f)
	}
	if f := c.request(map[string]any{"type": "no.such.type"}); f["code"] != "bad_request" || f["re"] != "no.such.type" {
		t.Fatalf("unknown type: %v", f)
	}
	if f := c.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "", "priority": "urgent"}}); f["code"] != "invalid" {
		t.Fatalf("invalid task: %v", f)
	} else if fields := f["fields"].(map[string]any); fields["title"] == nil || fields["priority"] == nil {
		t.Fatalf("invalid task fields: %v", f)
	}
	if f := c.request(map[string]any{"type": "task.delete", "task_id": 424242}); f["code"] != "not_found" {
		t.Fatalf("missing task: %v", f)
	}

	// A flood gets rate_limited errors, then the socket is closed with 4029.
	flood := dial(t, a.WS, "grace")
	for range 40 {
		if err := flood.conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
			break
		}
	}
	if f := flood.next("error"); f["code"] != "rate_limited" || f["retry_after_ms"] == nil {
		t.Fatalf("flood: %v", f)
	}
	if code := flood.waitClosed(); code != realtime.CloseRateLimited {
		t.Fatalf("flood close code %d", code)
	}

	// An oversized frame closes with 1009.
	big := dial(t, a.WS, "grace")
	_ = big.conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping","id":"`+string(make([]byte, 4096))+`"}`))
	if code := big.waitClosed(); code != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame close code %d", code)
	}

	// The others were not disturbed.
	other.quiet()
	c.quiet()
}

func TestOriginAndTokenChecks(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"WS_ALLOWED_ORIGINS": "app.example.com"}))

	dialStatus := func(url string, h http.Header) int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			conn.CloseNow()
			return 101
		}
		if res == nil {
			t.Fatalf("dial: %v", err)
		}
		return res.StatusCode
	}
	good := "Bearer " + tok(t, "heidi", time.Hour)
	if s := dialStatus(a.WS, http.Header{"Authorization": {good}, "Origin": {"https://evil.example.net"}}); s != http.StatusForbidden {
		t.Fatalf("cross-site origin: %d", s)
	}
	if s := dialStatus(a.WS, http.Header{"Authorization": {good}, "Origin": {"https://app.example.com"}}); s != 101 {
		t.Fatalf("allowed origin: %d", s)
	}
	if s := dialStatus(a.WS, nil); s != http.StatusUnauthorized {
		t.Fatalf("no token: %d", s)
	}
	if s := dialStatus(a.WS, http.Header{"Authorization": {"Bearer nonsense"}}); s != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", s)
	}
	if s := dialStatus(a.WS+"?access_token="+tok(t, "heidi", time.Hour), nil); s != 101 {
		t.Fatalf("token in query: %d", s)
	}
}

func TestTokenExpiryAndRefresh(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))

	// The expiry closes the socket with 4001.
	short := dialWith(t, a.WS, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok(t, "ivan", 2*time.Second)}}})
	if code := short.waitClosed(); code != realtime.CloseUnauthorized {
		t.Fatalf("expired token close code %d", code)
	}

	// auth.refresh before the expiry keeps the socket open past it.
	c := dialWith(t, a.WS, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok(t, "ivan", 2*time.Second)}}})
	if r := c.request(map[string]any{"type": "auth.refresh", "token": tok(t, "ivan", time.Hour)}); r.typ() != "reply" || r["expires_at"] == nil {
		t.Fatalf("refresh: %v", r)
	}
	if r := c.request(map[string]any{"type": "auth.refresh", "token": "garbage"}); r["code"] != "unauthorized" {
		t.Fatalf("bad refresh: %v", r)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		c.quiet() // still open and answering after the old expiry
	}

	// A token of another user is refused and the socket closed with 4003.
	if r := c.request(map[string]any{"type": "auth.refresh", "token": tok(t, "mallory", time.Hour)}); r["code"] != "forbidden" {
		t.Fatalf("refresh as another user: %v", r)
	}
	if code := c.waitClosed(); code != realtime.CloseForbidden {
		t.Fatalf("close code %d", code)
	}
}

// TestSlowConsumerIsDropped: a socket that stops reading is dropped once
// the server cannot write to it (WS_WRITE_TIMEOUT), while a healthy socket
// of the same user receives the whole burst (switching to catch-up from
// the log when its queue is full, instead of being disconnected).
func TestSlowConsumerIsDropped(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"WS_SEND_QUEUE_BYTES": "65536", "WS_WRITE_TIMEOUT": "1s"}))

	// A client with a small receive buffer (no autotuning) and a paused
	// reader: the kernel cannot absorb megabytes on its behalf.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	opts := wsOpts(t, "judy")
	opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	slow := dialWith(t, a.WS, opts)
	slow.pause()
	healthy := dial(t, a.WS, "judy")

	// About 8 MB of events in one statement: more than the server's
	// socket send buffer (4 MB at most here) and the 64 KiB queue.
	const n = 6000
	if _, err := env.DB.Pool.Exec(context.Background(), `
		INSERT INTO tasks (user_id, title, description)
		SELECT 'judy', 'bulk ' || i, repeat('x', 1000) FROM generate_series(1, $1) AS i`, n); err != nil {
		t.Fatal(err)
	}
	contiguous(t, "healthy", seqs(healthy.events(n)), 1)
	eventually(t, "the stuck socket is dropped", func() bool {
		return a.metricAbove(t, "tasksync_slow_consumer_closes_total", 0)
	})
	if a.metric(t, "tasksync_sockets_open") != 1 {
		t.Fatalf("sockets open: %v, want 1 (the healthy one)", a.metric(t, "tasksync_sockets_open"))
	}
	if a.metric(t, "tasksync_lagging_sessions_total") < 1 {
		t.Fatal("the healthy socket never had to catch up from the log: the burst did not overflow its queue")
	}
	slow.resume()
	slow.waitClosed()
	healthy.quiet()
}

// TestSlowConsumerGetsCloseCode: replies (which cannot be fetched again
// later, unlike events) that overflow the queue close the socket with
// 4008, and a client that is slow but alive reads that close code after
// what was already in flight.
func TestSlowConsumerGetsCloseCode(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"WS_SEND_QUEUE_BYTES": "65536"}))
	if _, err := env.DB.Pool.Exec(context.Background(), `
		INSERT INTO tasks (user_id, title, description)
		SELECT 'kate', 'big ' || i, repeat('y', 1000) FROM generate_series(1, 50) AS i`); err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	opts := wsOpts(t, "kate")
	opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	slow := dialWith(t, a.WS, opts)
	slow.pause()
	// List replies of ~60 KB each, megabytes the client does not read.
	// Requests run a few at a time (WS_MAX_IN_FLIGHT); the others are
	// refused with small rate_limited errors, so send plenty.
	for i := range 3000 {
		if err := slow.conn.Write(context.Background(), websocket.MessageText,
			[]byte(fmt.Sprintf(`{"type":"task.list","id":%d,"filter":{"limit":50}}`, i))); err != nil {
			break // the server may already have closed
		}
	}
	eventually(t, "slow consumer detected", func() bool {
		return a.metricAbove(t, "tasksync_slow_consumer_closes_total", 0)
	})
	slow.resume()
	if code := slow.waitClosed(); code != realtime.CloseSlowConsumer {
		t.Fatalf("close code %d, want 4008", code)
	}
}

// TestShutdownClosesWithGoingAway: stopping an instance closes its sockets
// with 1001 so that clients move to another instance.
func TestShutdownClosesWithGoingAway(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	c := dial(t, a.WS, "kim")
	other := dial(t, b.WS, "kim")
	a.Stop()
	if code := c.waitClosed(); code != websocket.StatusGoingAway {
		t.Fatalf("close code %d", code)
	}
	// Reconnect to B and resume: nothing lost.
	other.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "after A left"}})
	c2 := dialWith(t, b.WS+"?since=0", wsOpts(t, "kim"))
	if ev := c2.events(1)[0]; ev.task()["title"] != "after A left" {
		t.Fatalf("resume on B: %v", ev)
	}
}

func TestSocketLimitAndSignOutEverywhere(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"WS_MAX_SOCKETS_PER_USER": "2"}))
	b := env.start(env.config(map[string]string{"WS_MAX_SOCKETS_PER_USER": "2"}))

	c1 := dial(t, a.WS, "leo")
	c2 := dial(t, a.WS, "leo")
	// The third socket on A is accepted, says hello (always the first
	// frame), then is closed with 4009.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, a.WS, wsOpts(t, "leo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, hello, err := conn.Read(ctx); err != nil || !strings.Contains(string(hello), `"type":"hello"`) {
		t.Fatalf("third socket: first frame %s, %v", hello, err)
	} else if err := contract.ValidateServerFrame(hello); err != nil {
		t.Error(err)
	}
	_, _, err = conn.Read(ctx)
	if code := websocket.CloseStatus(err); code != realtime.CloseTooManySockets {
		t.Fatalf("third socket: %v", err)
	}
	c3 := dial(t, b.WS, "leo") // the limit is per instance

	// Sign out everywhere closes all of them, on both instances.
	if code := b.api(t, "leo", "DELETE", "/api/leo/sessions", nil, nil); code != http.StatusNoContent {
		t.Fatalf("sign out: %d", code)
	}
	for _, c := range []*wsClient{c1, c2, c3} {
		if code := c.waitClosed(); code != realtime.CloseSessionRevoked {
			t.Fatalf("close code %d", code)
		}
	}
}

func TestPresenceAcrossInstances(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))

	first := dialWith(t, a.WS+"?device=laptop", wsOpts(t, "mia"))
	if p := first.next("presence"); p["event"] != "join" || p["online"] != float64(1) || !presenceHas(p, first.hello["session_id"]) {
		t.Fatalf("own join: %v", p)
	}
	second := dialWith(t, b.WS+"?device=phone", wsOpts(t, "mia"))
	for {
		// A join right after another may be folded into a "sync" frame.
		p := first.next("presence")
		if p["online"] == float64(2) && presenceHas(p, second.hello["session_id"]) {
			break
		}
	}
	second.conn.Close(websocket.StatusNormalClosure, "")
	for {
		p := first.next("presence")
		if p["online"] == float64(1) && !presenceHas(p, second.hello["session_id"]) {
			break
		}
	}
	list := first.request(map[string]any{"type": "presence.list"})
	if list["online"] != float64(1) || list["sessions"].([]any)[0].(map[string]any)["device"] != "laptop" {
		t.Fatalf("list: %v", list)
	}
}

// TestWithoutRedis: with no REDIS_URL one instance runs on its in-process
// broker: events, presence and sign-out everywhere all work.
func TestWithoutRedis(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"REDIS_URL": ""}))
	c1 := dial(t, a.WS, "olga")
	c2 := dial(t, a.WS, "olga")
	for {
		if p := c1.next("presence"); p["online"] == float64(2) {
			break
		}
	}
	c2.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "no redis needed"}})
	if ev := c1.events(1)[0]; ev.task()["title"] != "no redis needed" {
		t.Fatalf("event: %v", ev)
	}
	if code := a.api(t, "olga", "DELETE", "/api/olga/sessions", nil, nil); code != http.StatusNoContent {
		t.Fatalf("sign out: %d", code)
	}
	for _, c := range []*wsClient{c1, c2} {
		if code := c.waitClosed(); code != realtime.CloseSessionRevoked {
			t.Fatalf("close code %d", code)
		}
	}
}

// TestPresenceFoldsBursts: many sockets of one user connecting at once get
// a bounded number of presence frames (joins within a window are folded
// into one), and the last frame lists them all.
func TestPresenceFoldsBursts(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"WS_MAX_SOCKETS_PER_USER": "100"}))
	const n = 30
	first := dial(t, a.WS, "quinn")
	// The others connect all at once.
	ids := make([]any, n-1)
	errs := make(chan error, n-1)
	for i := range n - 1 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, a.WS, wsOpts(t, "quinn"))
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { conn.CloseNow() })
			_, data, err := conn.Read(ctx)
			var hello frame
			if err == nil {
				err = json.Unmarshal(data, &hello)
			}
			if err == nil {
				err = contract.ValidateServerFrame(data)
			}
			ids[i] = hello["session_id"]
			errs <- err
			// Keep reading so that pings are answered.
			go func() {
				for {
					if _, _, err := conn.Read(context.Background()); err != nil {
						return
					}
				}
			}()
		}()
	}
	for range n - 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	frames := 0
	for {
		p := first.next("presence")
		frames++
		if p["online"] == float64(n) {
			for _, id := range ids {
				if !presenceHas(p, id) {
					t.Fatalf("last presence frame lacks %v", id)
				}
			}
			break
		}
	}
	// Unfolded, the first socket would get one frame per join: n.
	if frames >= n {
		t.Fatalf("%d presence frames for %d joins: not folded", frames, n)
	}
}

// TestFirstSessionMissesNothingFromTheBroker: the first session of a user
// on an instance starts only once the user's Redis subscription is in
// effect, so its own presence join (published right after) always arrives.
func TestFirstSessionMissesNothingFromTheBroker(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	for i := range 30 {
		user := fmt.Sprintf("fresh-%d", i)
		c := dial(t, a.WS, user)
		p := c.next("presence")
		if p["event"] != "join" || p["session_id"] != c.hello["session_id"] || p["online"] != float64(1) {
			t.Fatalf("%s: first presence frame %v", user, p)
		}
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
}
