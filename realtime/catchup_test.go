package realtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedLog counts the queries the group reader makes and can hold them
// until released, so that requests queue behind a running one.
type gatedLog struct {
	*fakeLog
	gate    chan struct{} // nil: queries run at once
	started chan struct{} // a query began (buffered)
	single  atomic.Int64  // CurrentSeq + Read
	grouped atomic.Int64  // CurrentSeqs + ReadRanges
	widest  atomic.Int64  // most ranges or users in one grouped query
}

func (l *gatedLog) wait() {
	l.started <- struct{}{}
	if l.gate != nil {
		<-l.gate
	}
}

func (l *gatedLog) wide(n int) {
	for {
		w := l.widest.Load()
		if int64(n) <= w || l.widest.CompareAndSwap(w, int64(n)) {
			return
		}
	}
}

func (l *gatedLog) CurrentSeq(ctx context.Context, u string) (int64, error) {
	l.wait()
	l.single.Add(1)
	return l.fakeLog.CurrentSeq(ctx, u)
}

func (l *gatedLog) Read(ctx context.Context, u string, after, upTo int64, limit int) ([]*Event, error) {
	l.wait()
	l.single.Add(1)
	return l.fakeLog.Read(ctx, u, after, upTo, limit)
}

func (l *gatedLog) CurrentSeqs(ctx context.Context, users []string) (map[string]int64, error) {
	l.wait()
	l.grouped.Add(1)
	l.wide(len(users))
	return l.fakeLog.CurrentSeqs(ctx, users)
}

func (l *gatedLog) ReadRanges(ctx context.Context, ranges []logRange, limit int) ([][]*Event, error) {
	l.wait()
	l.grouped.Add(1)
	l.wide(len(ranges))
	return l.fakeLog.ReadRanges(ctx, ranges, limit)
}

// A lone read runs at once with the single-user query; reads that arrive
// while the only query slot is taken are answered together, each with its
// own user's events, and devices of one user at the same seq share a range.
func TestGroupReaderGroupsQueuedReads(t *testing.T) {
	t.Parallel()
	flog := newFakeLog()
	for u := range 10 {
		for range 3 + u {
			flog.add(fmt.Sprintf("u%d", u))
		}
	}
	log := &gatedLog{fakeLog: flog, started: make(chan struct{}, 100)}
	g := newGroupReader(log, NewMetrics(nil), 1)
	ctx := context.Background()

	if seq, err := g.currentSeq(ctx, "u4", false); err != nil || seq != 7 {
		t.Fatalf("lone current seq: %d, %v", seq, err)
	}
	<-log.started
	if log.single.Load() != 1 || log.grouped.Load() != 0 {
		t.Fatalf("a lone read made %d single and %d grouped queries", log.single.Load(), log.grouped.Load())
	}

	// Hold the only slot with one read, queue 30 more behind it.
	log.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := g.read(ctx, "u0", 0, 3)
		first <- err
	}()
	<-log.started
	type answer struct {
		user   int
		seq    int64
		events []*Event
		err    error
	}
	answers := make(chan answer, 30)
	var queued sync.WaitGroup
	for i := range 30 {
		queued.Add(1)
		go func() {
			defer queued.Done()
			u := i % 10
			user := fmt.Sprintf("u%d", u)
			if i < 10 {
				seq, err := g.currentSeq(ctx, user, false)
				answers <- answer{user: u, seq: seq, err: err}
				return
			}
			evs, err := g.read(ctx, user, 1, 2+int64(u)) // two devices of each user: the same range
			answers <- answer{user: u, seq: -1, events: evs, err: err}
		}()
	}
	waitUntil(t, func() bool { g.g.mu.Lock(); defer g.g.mu.Unlock(); return len(g.g.queue) == 30 })
	close(log.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	queued.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.seq >= 0 {
			if a.seq != int64(3+a.user) {
				t.Errorf("current seq of u%d: %d, want %d", a.user, a.seq, 3+a.user)
			}
			continue
		}
		if len(a.events) != 1+a.user {
			t.Fatalf("u%d: %d events, want %d", a.user, len(a.events), 1+a.user)
		}
		for j, ev := range a.events {
			if ev.UserID != fmt.Sprintf("u%d", a.user) || ev.Seq != int64(2+j) {
				t.Fatalf("u%d: event %d is %s/%d", a.user, j, ev.UserID, ev.Seq)
			}
		}
	}
	// The 30 queued requests: one grouped query for the seqs and one for
	// the ranges (10 users, the two devices of each sharing a range).
	if log.grouped.Load() != 2 || log.widest.Load() != 10 {
		t.Fatalf("%d grouped queries, widest %d; want 2 of 10", log.grouped.Load(), log.widest.Load())
	}
}

// A queued request whose caller gives up leaves the queue; one already
// taken into a group or handed the lead still does its part, so the others
// are answered.
func TestGroupReaderCancelledWaiters(t *testing.T) {
	t.Parallel()
	flog := newFakeLog()
	flog.add("u")
	log := &gatedLog{fakeLog: flog, started: make(chan struct{}, 100), gate: make(chan struct{})}
	g := newGroupReader(log, NewMetrics(nil), 1)

	done := make(chan error, 1)
	go func() { _, err := g.currentSeq(context.Background(), "u", false); done <- err }()
	<-log.started

	gone, cancel := context.WithCancel(context.Background())
	errGone := make(chan error, 1)
	go func() { _, err := g.currentSeq(gone, "u", false); errGone <- err }()
	waitUntil(t, func() bool { g.g.mu.Lock(); defer g.g.mu.Unlock(); return len(g.g.queue) == 1 })
	stays := make(chan int64, 1)
	go func() {
		seq, _ := g.currentSeq(context.Background(), "u", false)
		stays <- seq
	}()
	waitUntil(t, func() bool { g.g.mu.Lock(); defer g.g.mu.Unlock(); return len(g.g.queue) == 2 })
	cancel()
	if err := <-errGone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(log.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-stays:
		if seq != 1 {
			t.Fatalf("seq %d", seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request queued behind a cancelled one was never answered")
	}
	g.g.mu.Lock()
	defer g.g.mu.Unlock()
	if g.g.leaders != 0 || len(g.g.queue) != 0 {
		t.Fatalf("left behind: %d leaders, %d queued", g.g.leaders, len(g.g.queue))
	}
}

// waitUntil polls cond until it holds, or fails the test after 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Twenty sockets resuming at once with a bound of two catch-up queries:
// the rest queue and are answered in groups, while events keep coming;
// every socket gets hello first, then each event it missed and each new
// one exactly once and in order, then synced.
func TestReconnectStormWithTwoCatchupQueries(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{CatchupQueries: 2})
	gated := &gatedLog{fakeLog: r.log, started: make(chan struct{}, 1000), gate: make(chan struct{})}
	r.srv.reads = newGroupReader(gated, r.srv.metrics, r.srv.cfg.CatchupQueries)
	users := []string{"ana", "ben", "cai", "dee"}
	for _, u := range users {
		r.write(u, 5)
	}

	conns := make([]*fakeConn, 20)
	sinces := make([]int64, 20)
	for i := range conns {
		sinces[i] = int64(i % 3)
		conns[i] = r.connect(users[i%4], &sinces[i])
		if f := conns[i].must(t); typ(f) != TypeHello {
			t.Fatalf("socket %d: first frame %v", i, f)
		}
	}
	// Two queries run (held), eighteen requests wait for them.
	waitUntil(t, func() bool {
		r.srv.reads.g.mu.Lock()
		defer r.srv.reads.g.mu.Unlock()
		return len(r.srv.reads.g.queue) == 18
	})
	for _, u := range users {
		r.write(u, 1) // seq 6, during the catch-up
	}
	close(gated.gate)

	for i, c := range conns {
		expectEvents(t, c, sinces[i], 6)
		for {
			f := c.must(t)
			if typ(f) == TypeSynced {
				if num(f, "seq") != 6 {
					t.Fatalf("socket %d: synced at %v, want 6", i, f)
				}
				break
			}
			if strings.HasPrefix(typ(f), "task.") {
				t.Fatalf("socket %d: event after its catch-up: %v", i, f)
			}
		}
	}
	if gated.grouped.Load() == 0 {
		t.Fatal("no grouped query: the queued requests were read one by one")
	}
	r.srv.reads.g.mu.Lock()
	defer r.srv.reads.g.mu.Unlock()
	if r.srv.reads.g.leaders != 0 || len(r.srv.reads.g.queue) != 0 {
		t.Fatalf("left behind: %d leaders, %d queued", r.srv.reads.g.leaders, len(r.srv.reads.g.queue))
	}
}

// Urgent requests (sessions already started) are served before the
// others, whatever their arrival; among each kind, first come first served.
func TestGrouperServesUrgentFirst(t *testing.T) {
	t.Parallel()
	type req struct{ name string }
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []string
	g := &grouper[req]{max: 1, maxGroup: 1, run: func(_ context.Context, group []*req) {
		if group[0].name == "first" {
			<-gate
		}
		mu.Lock()
		order = append(order, group[0].name)
		mu.Unlock()
	}}
	var wg sync.WaitGroup
	wg.Go(func() { g.do(context.Background(), &req{"first"}, false) })
	waitUntil(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.leaders == 1 })
	for i, r := range []struct {
		name   string
		urgent bool
	}{{"new1", false}, {"old1", true}, {"new2", false}, {"old2", true}} {
		wg.Go(func() { g.do(context.Background(), &req{r.name}, r.urgent) })
		waitUntil(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == i+1 })
	}
	close(gate)
	wg.Wait()
	if got := strings.Join(order, " "); got != "first old1 old2 new1 new2" {
		t.Fatalf("served %q, want urgent ones first", got)
	}
}
