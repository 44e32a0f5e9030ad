package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tasksync"
	"tasksync/auth"
	"tasksync/internal/contract"
	"tasksync/tasks"
)

// fakeConn is a Conn whose other end is the test. Writes are recorded in
// order and can be read back one by one (next), and each is checked against
// its JSON Schema in docs/schemas (a frame that does not match fails the
// test); frames the test sends come out of Read. As with a real socket, a pong is only "read" while the
// session's reader is in Read: Ping waits until Read is called.
type fakeConn struct {
	t       testing.TB // fails on a frame that does not match its schema; nil: frames are not checked
	in      chan []byte
	closed  chan struct{}
	once    sync.Once
	outOnce sync.Once

	mu        sync.Mutex
	out       [][]byte
	outSig    chan struct{} // a frame was written
	closeCode websocket.StatusCode
	reading   chan struct{} // closed and replaced each time Read is entered
	readerOut chan struct{} // closed when Read returns on a closed connection
	inRead    bool          // the reader waits in Read: a pong would be read at once
	// holdWrites makes Write block until the connection closes or the
	// write's context ends: a peer that does not read.
	holdWrites bool
	// noPong makes Ping wait for its context: a dead peer.
	noPong bool
	pings  int
	active int // pings running now
	most   int // the most pings running at once

	cursor int // next frame returned by next; test goroutine only
}

func newFakeConn(t testing.TB) *fakeConn {
	return &fakeConn{t: t, in: make(chan []byte, 64), closed: make(chan struct{}), outSig: make(chan struct{}, 1),
		reading: make(chan struct{}), readerOut: make(chan struct{})}
}

func (c *fakeConn) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	c.mu.Lock()
	c.inRead = true
	close(c.reading)
	c.reading = make(chan struct{})
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inRead = false
		c.mu.Unlock()
	}()
	select {
	case b := <-c.in:
		return websocket.MessageText, b, nil
	case <-c.closed:
		c.mu.Lock()
		code := c.closeCode
		c.mu.Unlock()
		c.outOnce.Do(func() { close(c.readerOut) })
		return 0, nil, websocket.CloseError{Code: code}
	case <-ctx.Done():
		c.CloseNow()
		return 0, nil, ctx.Err()
	}
}

func (c *fakeConn) Write(ctx context.Context, _ websocket.MessageType, p []byte) error {
	c.mu.Lock()
	hold := c.holdWrites
	c.mu.Unlock()
	if hold {
		select {
		case <-c.closed:
			return net_ErrClosed
		case <-ctx.Done():
			// As coder/websocket does: a write that times out closes the
			// connection, and the reader sees that before Write returns.
			c.CloseNow()
			<-c.readerOut
			return ctx.Err()
		}
	}
	select {
	case <-c.closed:
		return net_ErrClosed
	default:
	}
	if c.t != nil { // nil: rig.unchecked
		if err := contract.ValidateServerFrame(p); err != nil {
			c.t.Errorf("the session wrote a frame that does not match its schema: %v", err)
		}
	}
	c.mu.Lock()
	c.out = append(c.out, slices.Clone(p))
	c.mu.Unlock()
	signal(c.outSig)
	return nil
}

var net_ErrClosed = errors.New("use of closed connection")

func (c *fakeConn) Ping(ctx context.Context) error {
	c.mu.Lock()
	c.pings++
	c.active++
	c.most = max(c.most, c.active)
	noPong, inRead, reading := c.noPong, c.inRead, c.reading
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.active--
		c.mu.Unlock()
	}()
	if noPong {
		<-ctx.Done()
		return ctx.Err()
	}
	if inRead {
		return nil
	}
	select {
	case <-reading: // the reader came back to Read: the pong was read
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return net_ErrClosed
	}
}

func (c *fakeConn) Close(code websocket.StatusCode, _ string) error {
	c.closeWith(code)
	return nil
}

func (c *fakeConn) CloseNow() error {
	c.closeWith(websocket.StatusAbnormalClosure)
	return nil
}

func (c *fakeConn) closeWith(code websocket.StatusCode) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closeCode = code
		c.mu.Unlock()
		close(c.closed)
		signal(c.outSig)
	})
}

// send hands the session a client frame.
func (c *fakeConn) send(t testing.TB, v any) {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case c.in <- b:
	case <-c.closed:
		t.Fatalf("send %s: connection closed", b)
	case <-time.After(10 * time.Second):
		t.Fatalf("send %s: the reader did not take it", b)
	}
}

// next returns the next frame the session wrote, in order, waiting up to
// 10 s; ok is false if the connection closed with nothing more written.
func (c *fakeConn) next(t testing.TB) (frame map[string]any, ok bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.cursor < len(c.out) {
			b := c.out[c.cursor]
			c.cursor++
			c.mu.Unlock()
			var f map[string]any
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("frame %s: %v", b, err)
			}
			return f, true
		}
		c.mu.Unlock()
		select {
		case <-c.outSig:
		case <-c.closed:
			c.mu.Lock()
			more := c.cursor < len(c.out)
			c.mu.Unlock()
			if !more {
				return nil, false
			}
		case <-deadline.C:
			t.Fatal("no frame within 10s")
		}
	}
}

// must is next, failing the test when the connection closed. Presence
// frames (which the broker sends as sessions come and go) are skipped;
// everything else comes in the order it was written.
func (c *fakeConn) must(t testing.TB) map[string]any {
	t.Helper()
	for {
		f, ok := c.next(t)
		if !ok {
			t.Fatalf("connection closed (code %d) instead of a frame", c.code())
		}
		if typ(f) != TypePresenceInfo {
			return f
		}
	}
}

func (c *fakeConn) code() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// waitClosed waits for the connection to close and returns its code.
func (c *fakeConn) waitClosed(t testing.TB) websocket.StatusCode {
	t.Helper()
	select {
	case <-c.closed:
		return c.code()
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not close within 10s")
		return 0
	}
}

func typ(f map[string]any) string { s, _ := f["type"].(string); return s }
func num(f map[string]any, k string) int64 {
	n, _ := f[k].(float64)
	return int64(n)
}

// fakeTask is a task with every field set as the task service sets it, so
// that the frames carrying it match the Task schema.
func fakeTask(user string, id int64, title string) tasks.Task {
	if title == "" {
		title = "untitled"
	}
	now := time.Now()
	return tasks.Task{ID: id, UserID: user, Title: title, Priority: tasks.PriorityMedium, Tags: []string{},
		CreatedAt: now, UpdatedAt: now, Version: 1}
}

// fakeLog is an in-memory change log.
type fakeLog struct {
	mu     sync.Mutex
	events map[string][]*Event // by user, seq = index+1
	// beforeHubRead, if set, runs at the start of every read by the hub's
	// fetch loop (which reads up to math.MaxInt64; sessions read up to the
	// seq they know of).
	beforeHubRead func()
}

func newFakeLog() *fakeLog { return &fakeLog{events: map[string][]*Event{}} }

// add appends an event for user and returns its seq.
func (l *fakeLog) add(user string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := int64(len(l.events[user]) + 1)
	task, _ := json.Marshal(fakeTask(user, seq, fmt.Sprintf("t%d", seq)))
	ev := &Event{UserID: user, Seq: seq, Op: "created", TaskID: seq, Task: task, CreatedAt: time.Now()}
	ev.frame, _ = encodeEvent(ev)
	l.events[user] = append(l.events[user], ev)
	return seq
}

func (l *fakeLog) CurrentSeq(_ context.Context, user string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.events[user])), nil
}

func (l *fakeLog) Read(_ context.Context, user string, after, upTo int64, limit int) ([]*Event, error) {
	l.mu.Lock()
	hook := l.beforeHubRead
	l.mu.Unlock()
	if hook != nil && upTo == math.MaxInt64 {
		hook()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Event
	for _, ev := range l.events[user] {
		if ev.Seq > after && ev.Seq <= upTo && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (l *fakeLog) ReadAfter(ctx context.Context, cursors map[string]int64, perUser int) ([]*Event, error) {
	var out []*Event
	for u, c := range cursors {
		evs, _ := l.Read(ctx, u, c, math.MaxInt64, perUser)
		out = append(out, evs...)
	}
	return out, nil
}

func (l *fakeLog) CurrentSeqs(ctx context.Context, users []string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, u := range users {
		out[u], _ = l.CurrentSeq(ctx, u)
	}
	return out, nil
}

func (l *fakeLog) ReadRanges(ctx context.Context, ranges []logRange, limit int) ([][]*Event, error) {
	out := make([][]*Event, len(ranges))
	for i, r := range ranges {
		out[i], _ = l.Read(ctx, r.User, r.After, r.UpTo, limit)
	}
	return out, nil
}

// fakeTasks is a TaskService over an in-memory list. Mutations block while
// hold is set (a table locked in the database).
type fakeTasks struct {
	mu    sync.Mutex
	list  []tasks.Task
	seq   int64
	hold  chan struct{} // mutations wait for it to close, when not nil
	calls int
	// snapshot bookkeeping
	snapActive, snapMost int
	snapGate             chan struct{} // SnapshotPages waits for it, when not nil
	betweenPages         func()        // runs after each page
}

func (f *fakeTasks) mutation(ctx context.Context, title string) (tasks.Result, error) {
	f.mu.Lock()
	f.calls++
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := fakeTask("u", int64(len(f.list)+1), title)
	f.list = append(f.list, t)
	return tasks.Result{Op: tasks.OpCreated, TaskID: t.ID, Task: &t}, nil
}

func (f *fakeTasks) Create(ctx context.Context, _ string, fl tasks.Fields, _ tasks.MutationOptions) (tasks.Result, error) {
	title := ""
	if fl.Title != nil {
		title = *fl.Title
	}
	return f.mutation(ctx, title)
}

func (f *fakeTasks) Update(ctx context.Context, _ string, _ int64, _ tasks.Fields, _ tasks.MutationOptions) (tasks.Result, error) {
	return f.mutation(ctx, "updated")
}

func (f *fakeTasks) SetCompleted(ctx context.Context, _ string, _ int64, _ *bool, _ tasks.MutationOptions) (tasks.Result, error) {
	return f.mutation(ctx, "completed")
}

func (f *fakeTasks) Delete(ctx context.Context, _ string, id int64, _ tasks.MutationOptions) (tasks.Result, error) {
	return tasks.Result{}, tasksync.Errorf(tasksync.CodeNotFound, "task %d not found", id)
}

func (f *fakeTasks) DeleteSeries(ctx context.Context, userID string, id int64, opts tasks.MutationOptions) (tasks.Result, error) {
	return f.Delete(ctx, userID, id, opts)
}

func (f *fakeTasks) History(_ context.Context, _ string, id int64, _ int) (tasks.History, error) {
	return tasks.History{}, tasksync.Errorf(tasksync.CodeNotFound, "task %d has no history", id)
}

func (f *fakeTasks) Restore(ctx context.Context, _ string, _ int64, _ int, _ tasks.MutationOptions) (tasks.Result, error) {
	return f.mutation(ctx, "restored")
}

func (f *fakeTasks) List(context.Context, string, tasks.ListQuery) (tasks.Page, error) {
	return tasks.Page{}, nil
}

func (f *fakeTasks) SnapshotPages(ctx context.Context, _ string, pageSize int, fn func(int64, []tasks.Task) error) (int64, error) {
	f.mu.Lock()
	f.snapActive++
	f.snapMost = max(f.snapMost, f.snapActive)
	gate, between := f.snapGate, f.betweenPages
	list, seq := slices.Clone(f.list), f.seq
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.snapActive--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	for i := 0; ; i += pageSize {
		page := list[min(i, len(list)):min(i+pageSize, len(list))]
		if err := fn(seq, page); err != nil {
			return 0, err
		}
		if between != nil {
			between()
		}
		if len(page) < pageSize {
			return seq, nil
		}
	}
}

// fakeVerifier accepts any token as the user it names.
type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, raw string) (auth.Identity, error) {
	if raw == "" || raw == "bad" {
		return auth.Identity{}, tasksync.Errorf(tasksync.CodeUnauthorized, "invalid token")
	}
	return auth.Identity{UserID: raw}, nil
}

// rig is a hub and a server over fakes, with the hub running.
type rig struct {
	t     *testing.T
	log   *fakeLog
	tasks *fakeTasks
	hub   *Hub
	srv   *Server
	// unchecked leaves the frames of the sockets connected from then on
	// unchecked against docs/schemas: for stress tests whose many frames
	// all have shapes the other tests check, where checking tens of
	// thousands of frames under -race would starve the tests running in
	// parallel.
	unchecked bool
}

func newRig(t *testing.T, cfg Config) *rig { return newRigWith(t, cfg, nil) }

// newRigWith is newRig with setup run on the hub before it runs.
func newRigWith(t *testing.T, cfg Config, setup func(*Hub)) *rig {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &rig{t: t, log: newFakeLog(), tasks: &fakeTasks{}}
	r.hub = newHub(HubConfig{Logger: logger, Broker: NewMemoryBroker(), Instance: "test"}, r.log)
	if setup != nil {
		setup(r.hub)
	}
	r.srv = NewServer(cfg, ServerDeps{Logger: logger, Hub: r.hub, Tasks: r.tasks, Verifier: fakeVerifier{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.hub.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := r.srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("hub.Run: %v", err)
		}
	})
	return r
}

// connect starts a session of user on a fake connection, as ServeHTTP
// does after the upgrade.
func (r *rig) connect(user string, since *int64) *fakeConn {
	r.t.Helper()
	c := newFakeConn(r.t)
	if r.unchecked {
		c.t = nil
	}
	start, _ := r.log.CurrentSeq(context.Background(), user)
	s := newSession(r.srv, c, fmt.Sprintf("%s-%p", user, c), user, start, time.Time{})
	s.presence = newPresenceEntry(PresenceEntry{SessionID: s.id, UserID: user, Instance: "test", ConnectedAt: time.Now()})
	r.srv.start(s, since, auth.Identity{UserID: user})
	return c
}

// write appends n events for user to the log and notifies the hub.
func (r *rig) write(user string, n int) {
	for range n {
		seq := r.log.add(user)
		r.hub.notify(user, seq)
	}
}
