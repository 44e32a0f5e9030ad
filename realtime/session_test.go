package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tasksync/auth"
)

// expectEvents reads frames in order and checks that the task events among
// them are exactly from+1..to, in order; other frame types (replies,
// synced, presence) may come in between.
func expectEvents(t *testing.T, c *fakeConn, from, to int64) {
	t.Helper()
	for want := from + 1; want <= to; {
		f := c.must(t)
		if !strings.HasPrefix(typ(f), "task.") {
			continue
		}
		if got := num(f, "seq"); got != want {
			t.Fatalf("event seq %d, want %d", got, want)
		}
		want++
	}
}

// The first frame of every socket is hello, and the events that follow it
// start right after hello.seq, while the user's changes keep coming: the
// session is registered with the hub only after hello is queued.
func TestHelloIsAlwaysTheFirstFrame(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{MaxSocketsPerUser: 1000})
	r.unchecked = true // ~30,000 task.created frames; their shape is checked by the other tests
	const user, sockets = "alice", 200
	r.write(user, 5)

	// Writes interleaved with connects; the hub dispatches them on its own
	// goroutine, concurrently with the sessions starting.
	conns := make([]*fakeConn, sockets)
	var since int64 = 2
	for i := range conns {
		r.write(user, 1)
		if i%2 == 0 {
			conns[i] = r.connect(user, nil)
		} else {
			conns[i] = r.connect(user, &since) // replay first, then live
		}
	}
	last, _ := r.log.CurrentSeq(context.Background(), user)

	for i, c := range conns {
		hello := c.must(t)
		if typ(hello) != TypeHello {
			t.Fatalf("socket %d: first frame %v, want hello", i, hello)
		}
		from := num(hello, "seq")
		if i%2 == 1 {
			from = since
		}
		expectEvents(t, c, from, last)
	}
}

// With ?since=, the replay comes before any live event and ends with
// synced; live events follow without gap or duplicate.
func TestSinceReplaysBeforeLiveEvents(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	r.write("bob", 10)
	since := int64(3)
	c := r.connect("bob", &since)
	r.write("bob", 5)
	if f := c.must(t); typ(f) != TypeHello || num(f, "seq") < 10 {
		t.Fatalf("first frame %v", f)
	}
	var seqs []int64
	sawSynced := false
	for len(seqs) < 12 || !sawSynced {
		f := c.must(t)
		switch typ(f) {
		case TypeTaskCreated:
			seqs = append(seqs, num(f, "seq"))
		case TypeSynced:
			sawSynced = true
		}
	}
	for i, s := range seqs {
		if s != int64(4+i) {
			t.Fatalf("events %v: want 4..15 in order", seqs)
		}
	}
	if !sawSynced {
		t.Fatal("no synced frame after the replay")
	}
}

// A request that waits on the database does not stop the reader: pongs
// are read, app pings answered, and the socket stays open; past
// MaxInFlight, requests are refused with rate_limited, not queued.
func TestSlowRequestsDoNotBlockTheReader(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{PingInterval: 5 * time.Millisecond, PongTimeout: 20 * time.Millisecond, MaxInFlight: 4})
	hold := make(chan struct{})
	r.tasks.hold = hold
	c := r.connect("carol", nil)
	c.must(t) // hello

	for i := range 4 {
		c.send(t, map[string]any{"type": "task.create", "id": i, "task": map[string]any{"title": fmt.Sprint("t", i)}})
	}
	c.send(t, map[string]any{"type": "task.create", "id": "over", "task": map[string]any{"title": "one too many"}})
	if f := c.must(t); typ(f) != TypeError || f["code"] != "rate_limited" || f["id"] != "over" {
		t.Fatalf("fifth request: %v, want rate_limited", f)
	}
	// Ping periods pass while the creates wait: the server pings again only
	// after a pong, and a pong is read only when the reader is back in Read
	// (the fake answers the ping then), within the 20 ms pong timeout or the
	// socket is dropped. So several server pings mean the reader kept reading.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		pings := c.pings
		c.mu.Unlock()
		if pings >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server sent %d pings in 10 s (interval 5 ms)", pings)
		}
		time.Sleep(time.Millisecond) // polling a counter, not waiting for a result
	}
	// And application pings are answered at once, in order.
	for i := range 10 {
		c.send(t, map[string]any{"type": "ping", "id": i})
		if f := c.must(t); typ(f) != TypePong || num(f, "id") != int64(i) {
			t.Fatalf("ping %d: %v", i, f)
		}
	}
	select {
	case <-c.closed:
		t.Fatalf("socket closed (%d) while requests waited", c.code())
	default:
	}
	close(hold)
	got := map[int64]bool{}
	for len(got) < 4 {
		f := c.must(t)
		if typ(f) == TypeReply {
			got[num(f, "id")] = true
		}
	}
}

// Pings are single flight: with a peer that never answers and an interval
// far shorter than the pong timeout, one ping at a time, and the socket is
// dropped once the pong is late.
func TestPingsAreSingleFlight(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{PingInterval: time.Millisecond, PongTimeout: 100 * time.Millisecond})
	c := newFakeConn(t)
	c.noPong = true
	s := newSession(r.srv, c, "dave-1", "dave", 0, time.Time{})
	r.srv.start(s, nil, auth.Identity{UserID: "dave"})
	c.waitClosed(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.most != 1 {
		t.Fatalf("at most %d pings at once, want 1", c.most)
	}
}

// A snapshot comes in pages of at most snapshotPageTasks tasks and about
// snapshotFrameBytes bytes, all carrying the same seq and the request id,
// the first with the reason, the last with more=false; together they hold
// every task once, in order.
func TestSnapshotIsPaged(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	big := strings.Repeat("x", 900)
	for i := range 1234 {
		desc := ""
		if i%3 == 0 {
			desc = big
		}
		task := fakeTask("erin", int64(i+1), fmt.Sprint("t", i))
		task.Description = desc
		r.tasks.list = append(r.tasks.list, task)
	}
	r.tasks.seq = 77
	c := r.connect("erin", nil)
	c.must(t) // hello
	c.send(t, map[string]any{"type": "sync", "id": "s1", "since": -1})

	var ids []int64
	for page := 0; ; page++ {
		f := c.must(t)
		if typ(f) != TypeSnapshot {
			t.Fatalf("frame %v, want snapshot page %d", f, page)
		}
		if num(f, "page") != int64(page) || num(f, "seq") != 77 {
			t.Fatalf("page %d: page=%v seq=%v", page, f["page"], f["seq"])
		}
		if (page == 0) != (f["reason"] != nil) || f["id"] != "s1" {
			t.Fatalf("page %d: reason %v, id %v: want the id on every page, the reason on the first", page, f["reason"], f["id"])
		}
		list := f["tasks"].([]any)
		if len(list) == 0 || len(list) > snapshotPageTasks {
			t.Fatalf("page %d has %d tasks", page, len(list))
		}
		b, _ := json.Marshal(f)
		if len(b) > snapshotFrameBytes+4096 {
			t.Fatalf("page %d is %d bytes", page, len(b))
		}
		for _, it := range list {
			ids = append(ids, int64(it.(map[string]any)["id"].(float64)))
		}
		if f["more"] == false {
			break
		}
	}
	if len(ids) != 1234 {
		t.Fatalf("%d tasks in the pages, want 1234", len(ids))
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("task %d at position %d", id, i)
		}
	}
	// Live again from seq 77: the next event is 78 (fake log is empty, so
	// write up to it).
	if got := testutil.ToFloat64(r.hub.metrics.snapshots); got != 1 {
		t.Fatalf("snapshots counted %v, want 1", got)
	}
}

// A newer sync stops a snapshot in progress: its reader stops at the
// current page, and the newer request gets its own answer.
func TestNewerSyncSupersedesASnapshot(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	for i := range 2000 {
		r.tasks.list = append(r.tasks.list, fakeTask("u", int64(i+1), "t"))
	}
	c := r.connect("frank", nil)
	c.must(t) // hello
	var once sync.Once
	pages := 0
	r.tasks.mu.Lock()
	r.tasks.betweenPages = func() {
		pages++
		once.Do(func() {
			c.in <- []byte(`{"type":"sync","id":"s2","since":0}`)
			// The next page is read only once the reader has taken s2:
			// on a busy machine the snapshot could otherwise finish first.
			eventually(t, func() bool {
				list, _ := r.hub.reg.get("frank")
				return len(list) == 1 && list[0].superseded()
			})
		})
	}
	r.tasks.mu.Unlock()
	c.send(t, map[string]any{"type": "sync", "id": "s1", "since": -1})
	// The first snapshot's pages, cut short, then s1 and s2 both answered
	// with synced (since 0 is a replay of an empty log).
	answered := map[string]bool{}
	for len(answered) < 2 {
		f := c.must(t)
		switch typ(f) {
		case TypeSnapshot:
			if f["more"] == false {
				t.Fatal("the superseded snapshot was sent to its end")
			}
		case TypeSynced:
			answered[f["id"].(string)] = true
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	r.tasks.mu.Lock()
	defer r.tasks.mu.Unlock()
	if pages >= 4 {
		t.Fatalf("%d pages read of a superseded snapshot", pages)
	}
}

// At most MaxSnapshots snapshots are built at once on an instance,
// whatever the number of sockets asking.
func TestSnapshotBuildsAreBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{MaxSnapshots: 2})
	gate := make(chan struct{})
	r.tasks.snapGate = gate
	var conns []*fakeConn
	for i := range 6 {
		c := r.connect(fmt.Sprint("g", i), nil)
		c.must(t)
		c.send(t, map[string]any{"type": "sync", "since": -1})
		conns = append(conns, c)
	}
	// Wait until two builds are in and the others queue for a slot.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.tasks.mu.Lock()
		active := r.tasks.snapActive
		r.tasks.mu.Unlock()
		if active == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshot builds running, want 2", active)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	close(gate)
	for _, c := range conns {
		if f := c.must(t); typ(f) != TypeSnapshot || f["more"] != false {
			t.Fatalf("frame %v, want a one-page snapshot", f)
		}
	}
	r.tasks.mu.Lock()
	defer r.tasks.mu.Unlock()
	if r.tasks.snapMost != 2 {
		t.Fatalf("at most %d builds at once, want 2", r.tasks.snapMost)
	}
}

// A client that never reads a snapshot is closed as a slow consumer once
// SnapshotTimeout passes, releasing its slot.
func TestUnreadSnapshotTimesOut(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{SnapshotTimeout: 200 * time.Millisecond, SendQueueBytes: 64 << 10, WriteTimeout: 300 * time.Millisecond, MaxSnapshots: 1})
	for i := range 3000 {
		r.tasks.list = append(r.tasks.list, fakeTask("u", int64(i+1), strings.Repeat("t", 100)))
	}
	c := r.connect("gina", nil)
	c.must(t) // hello
	c.mu.Lock()
	c.holdWrites = true
	c.mu.Unlock()
	c.send(t, map[string]any{"type": "sync", "since": -1})
	c.waitClosed(t) // dropped: a close frame cannot reach a peer that does not read
	eventually(t, func() bool { return testutil.ToFloat64(r.hub.metrics.closes.WithLabelValues("4008")) == 1 })
	// The slot is free again: another socket gets its snapshot.
	r.tasks.list = r.tasks.list[:10]
	d := r.connect("hugo", nil)
	d.must(t)
	d.send(t, map[string]any{"type": "sync", "since": -1})
	if f := d.must(t); typ(f) != TypeSnapshot {
		t.Fatalf("frame %v, want snapshot", f)
	}
}

// Each session's end is counted once, with the code it ended with.
func TestDisconnectIsCountedOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	c := r.connect("ivan", nil)
	c.must(t)
	if err := r.hub.CloseUser(context.Background(), "ivan", DisconnectRevoked); err != nil {
		t.Fatal(err)
	}
	if code := c.waitClosed(t); code != CloseSessionRevoked {
		t.Fatalf("closed with %d", code)
	}
	// The close is counted at the very end of the session, after it left
	// the hub (socketsOpen reaches 0 before that): wait for the session to
	// be released, not for the gauge.
	eventually(t, func() bool {
		r.srv.mu.Lock()
		defer r.srv.mu.Unlock()
		return r.srv.active == 0
	})
	if got := testutil.ToFloat64(r.hub.metrics.closes.WithLabelValues("4010")); got != 1 {
		t.Fatalf("4010 counted %v times", got)
	}
	if got := testutil.CollectAndCount(r.hub.metrics.closes); got != 1 {
		t.Fatalf("%d close codes counted, want 1", got)
	}
}

// A panic while dispatching one batch is recovered: the hub keeps
// delivering, and the sessions concerned catch up.
func TestHubSurvivesAPanic(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	c := r.connect("jill", nil)
	c.must(t)
	var once sync.Once
	r.log.mu.Lock()
	r.log.beforeHubRead = func() { once.Do(func() { panic("boom") }) }
	r.log.mu.Unlock()
	r.write("jill", 3)
	expectEvents(t, c, 0, 3)
}

// Shutdown closes every session with 1001 and waits for them; it may be
// called again.
func TestShutdownClosesAndWaits(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	var conns []*fakeConn
	for i := range 10 {
		c := r.connect(fmt.Sprint("k", i%3), nil)
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if code := c.waitClosed(t); code != CloseGoingAway {
			t.Fatalf("closed with %d", code)
		}
	}
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// A socket arriving now is told to go elsewhere.
	late := r.connect("late", nil)
	if f := late.must(t); typ(f) != TypeHello {
		t.Fatalf("first frame %v", f)
	}
	if code := late.waitClosed(t); code != CloseGoingAway {
		t.Fatalf("late socket closed with %d", code)
	}
}

// eventually polls cond until it holds, for at most 10 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// A session's start seq is read before it is registered: an event
// dispatched to the user's other sessions in between still reaches it, even
// when no later event comes to reveal the gap.
func TestEventBetweenStartSeqAndRegistrationIsDelivered(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	a := r.connect("lena", nil)
	a.must(t) // hello

	c := newFakeConn(t)
	start, _ := r.log.CurrentSeq(context.Background(), "lena") // as ServeHTTP does
	r.write("lena", 1)
	expectEvents(t, a, 0, 1) // dispatched, to a only: b is not registered yet
	s := newSession(r.srv, c, "lena-late", "lena", start, time.Time{})
	r.srv.start(s, nil, auth.Identity{UserID: "lena"})
	if f := c.must(t); typ(f) != TypeHello || num(f, "seq") != 0 {
		t.Fatalf("first frame %v, want hello with seq 0", f)
	}
	expectEvents(t, c, 0, 1)
	// No synced frame for a check nobody asked for.
	c.send(t, map[string]any{"type": "ping", "id": 1})
	if f := c.must(t); typ(f) != TypePong {
		t.Fatalf("frame %v, want pong", f)
	}
}

// An event the hub delivers right after the registration, before the
// replay of ?since= has started, does not jump ahead of the replay.
func TestEventAtRegistrationWaitsForTheReplay(t *testing.T) {
	// Not parallel: it sets a package test hook.
	r := newRig(t, Config{})
	r.write("mona", 10)
	var next *Event
	testHookRegistered = func(s *session) {
		if s.userID == "mona" && next != nil {
			s.deliver(next) // as the hub would, in the window
		}
	}
	t.Cleanup(func() { testHookRegistered = nil })
	r.log.add("mona") // seq 11, committed but not yet notified
	evs, _ := r.log.Read(context.Background(), "mona", 10, 11, 1)
	next = evs[0]
	c := newFakeConn(t)
	s := newSession(r.srv, c, "mona-1", "mona", 10, time.Time{})
	since := int64(2)
	r.srv.start(s, &since, auth.Identity{UserID: "mona"})
	if f := c.must(t); typ(f) != TypeHello {
		t.Fatalf("first frame %v", f)
	}
	expectEvents(t, c, 2, 11)
}

// A peer that accepts nothing for WriteTimeout is dropped and counted as a
// slow consumer, even though the reader sees the dropped connection first.
func TestStuckPeerIsCountedAsSlowConsumer(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{WriteTimeout: 100 * time.Millisecond})
	c := r.connect("nils", nil)
	c.must(t) // hello
	c.mu.Lock()
	c.holdWrites = true
	c.mu.Unlock()
	c.send(t, map[string]any{"type": "ping"})
	c.waitClosed(t)
	eventually(t, func() bool { return testutil.ToFloat64(r.hub.metrics.closes.WithLabelValues("4008")) == 1 })
	if got := testutil.ToFloat64(r.hub.metrics.slowConsumers); got != 1 {
		t.Fatalf("slow consumers %v, want 1", got)
	}
}
