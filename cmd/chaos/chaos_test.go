package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The harness is only as good as its detectors: these tests feed them
// scripted frames and change logs with known defects.

func testHarness() *harness {
	h := &harness{instances: [2]*instance{{name: "a"}, {name: "b"}}}
	h.phase.Store("test")
	return h
}

// scriptedSocket serves one socket that sends frames in order and then
// closes it normally.
func scriptedSocket(t *testing.T, frames ...string) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for _, f := range frames {
			if err := c.Write(r.Context(), websocket.MessageText, []byte(f)); err != nil {
				return
			}
		}
		_ = c.Close(websocket.StatusNormalClosure, "script done")
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

func TestReaderDetectsHelloOrderDuplicatesAndGaps(t *testing.T) {
	h := testHarness()
	r := &reader{h: h, user: "u", tasks: map[int64]taskView{}}
	conn := scriptedSocket(t,
		`{"type":"task.created","seq":1,"task":{"id":1,"title":"one","version":1}}`, // before hello
		`{"type":"hello","seq":1}`,
		`{"type":"task.created","seq":1,"task":{"id":1,"title":"one","version":1}}`, // again
		`{"type":"presence","event":"join","online":1}`,
		`{"type":"task.created","seq":2,"task":{"id":2,"title":"two","version":1}}`,
		// A paged snapshot replaces the list; a reply may come between pages.
		`{"type":"snapshot","seq":5,"page":0,"more":true,"tasks":[{"id":7,"title":"seven","version":3}]}`,
		`{"type":"reply","id":9,"re":"ping"}`,
		`{"type":"snapshot","seq":5,"page":1,"more":false,"tasks":[{"id":8,"title":"eight","version":1}]}`,
		`{"type":"task.updated","seq":6,"task":{"id":7,"title":"seven!","version":4}}`,
		`{"type":"task.deleted","seq":8,"task_id":8}`, // seq 7 skipped
	)
	code, err := r.session(context.Background(), conn, "0")
	if code != "gap" || err == nil {
		t.Fatalf("session ended with %q, %v; want a gap", code, err)
	}
	if got := h.helloNotFirst.snapshot()["reader"]; got != 1 {
		t.Errorf("sockets with hello not first = %d, want 1", got)
	}
	if got := h.framesBeforeHello.snapshot()["reader"]; got != 1 {
		t.Errorf("frames before hello = %d, want 1", got)
	}
	if got := h.readerDups.Load(); got != 1 {
		t.Errorf("duplicates = %d, want 1", got)
	}
	if g, m := h.readerGaps.Load(), h.readerMissing.Load(); g != 1 || m != 1 {
		t.Errorf("gaps = %d (missing %d), want 1 (1)", g, m)
	}
	if got := r.lastSeq.Load(); got != 6 {
		t.Errorf("last seq = %d, want 6 (the event after the gap is not applied)", got)
	}
	want := map[int64]taskView{7: {ID: 7, Title: "seven!", Version: 4}, 8: {ID: 8, Title: "eight", Version: 1}}
	if got := r.view(); len(got) != 2 || got[7] != want[7] || got[8] != want[8] {
		t.Errorf("tasks = %+v, want %+v", got, want)
	}
	if a := h.anomalies.snapshot(); len(a) != 0 {
		t.Errorf("anomalies %v", a)
	}
	if len(h.notes) != 3 {
		t.Errorf("notes = %q, want one each for hello, duplicate and gap", h.notes)
	}
}

func TestReaderSnapshots(t *testing.T) {
	h := testHarness()
	r := &reader{h: h, user: "u", tasks: map[int64]taskView{1: {ID: 1}}}
	conn := scriptedSocket(t,
		`{"type":"hello","seq":9}`,
		// Today's single frame: no page, no more.
		`{"type":"snapshot","seq":3,"tasks":[{"id":2,"title":"two"}]}`,
		// An unfinished snapshot is dropped when a new page 0 starts.
		`{"type":"snapshot","seq":4,"page":0,"more":true,"tasks":[{"id":3}]}`,
		`{"type":"snapshot","seq":5,"page":0,"more":true,"tasks":[{"id":4}]}`,
		`{"type":"snapshot","seq":5,"page":1,"more":false,"tasks":[{"id":5}]}`,
		// An event between the pages of a snapshot is a protocol violation.
		`{"type":"snapshot","seq":6,"page":0,"more":true,"tasks":[]}`,
		`{"type":"task.created","seq":6,"task":{"id":6}}`,
	)
	if code, _ := r.session(context.Background(), conn, "0"); code != "1000" {
		t.Fatalf("session ended with %q, want the script's 1000", code)
	}
	if got := h.snapshots.Load(); got != 2 {
		t.Errorf("snapshots = %d, want 2", got)
	}
	if got := r.view(); len(got) != 3 || got[4].ID != 4 || got[5].ID != 5 || got[6].ID != 6 {
		t.Errorf("tasks = %+v, want 4, 5, 6", got)
	}
	if got := h.anomalies.snapshot()["task event between the pages of a snapshot"]; got != 1 {
		t.Errorf("event between pages counted %d times, want 1", got)
	}
}

func TestCheckWriterFindsLossDuplicatesAndOrder(t *testing.T) {
	h := testHarness()
	w := &writer{h: h, user: "u", tasks: map[int64]*ownedTask{}}
	n := int64(0)
	mut := func(kind, title string) *mutation {
		n++
		m := &mutation{n: n, kind: kind, title: title, mid: title, settled: true, outcome: "ok"}
		w.muts = append(w.muts, m)
		return m
	}
	task := func(id int64, title string, completed, deleted bool, ops ...*mutation) *ownedTask {
		t := &ownedTask{id: id, title: title, completed: completed, deleted: deleted, ops: ops}
		w.tasks[id] = t
		return t
	}
	var events []event
	ev := func(op string, id int64, title string, completed bool) {
		events = append(events, event{seq: int64(len(events) + 1), op: op, taskID: id, title: title, completed: completed})
	}
	rows := map[int64]taskView{}

	// 1: clean: create, update, toggle.
	task(1, "u1", true, false, mut(kindCreate, "c1"), mut(kindUpdate, "u1"), mut(kindComplete, ""))
	ev("created", 1, "c1", false)
	ev("updated", 1, "u1", false)
	ev("updated", 1, "u1", true)
	rows[1] = taskView{ID: 1, Title: "u1", Completed: true}
	// 2: an acknowledged toggle is missing.
	task(2, "c2", true, false, mut(kindCreate, "c2"), mut(kindComplete, ""))
	ev("created", 2, "c2", false)
	rows[2] = taskView{ID: 2, Title: "c2"}
	// 3: a toggle applied twice.
	task(3, "c3", true, false, mut(kindCreate, "c3"), mut(kindComplete, ""))
	ev("created", 3, "c3", false)
	ev("updated", 3, "c3", true)
	ev("updated", 3, "c3", false)
	rows[3] = taskView{ID: 3, Title: "c3"}
	// 4 and 5: one create made two tasks.
	task(4, "c4", false, false, mut(kindCreate, "c4"))
	ev("created", 4, "c4", false)
	ev("created", 5, "c4", false)
	rows[4], rows[5] = taskView{ID: 4, Title: "c4"}, taskView{ID: 5, Title: "c4"}
	// 6: two updates in the other order.
	task(6, "b", false, false, mut(kindCreate, "c6"), mut(kindUpdate, "a"), mut(kindUpdate, "b"))
	ev("created", 6, "c6", false)
	ev("updated", 6, "b", false)
	ev("updated", 6, "a", false)
	rows[6] = taskView{ID: 6, Title: "a"}
	// 7: an unanswered toggle that was applied: not a defect.
	t7 := task(7, "c7", false, false, mut(kindCreate, "c7"))
	p := mut(kindComplete, "")
	p.settled, p.outcome, p.task = false, "", t7
	t7.busy, t7.pending = true, p
	ev("created", 7, "c7", false)
	ev("updated", 7, "c7", true)
	rows[7] = taskView{ID: 7, Title: "c7", Completed: true}
	// 8: deleted as acknowledged.
	task(8, "c8", false, true, mut(kindCreate, "c8"), mut(kindDelete, ""))
	ev("created", 8, "c8", false)
	ev("deleted", 8, "", false)

	v := &verification{}
	h.checkWriter(v, w, events, rows)
	if v.Lost != 1 || v.Duplicated != 2 || v.Reordered != 1 || v.Unresolved != 1 || v.LogGaps != 0 {
		t.Errorf("lost %d, duplicated %d, reordered %d, unresolved %d, log gaps %d; want 1, 2, 1, 1, 0\n%s",
			v.Lost, v.Duplicated, v.Reordered, v.Unresolved, v.LogGaps, strings.Join(v.Details, "\n"))
	}
	// The table: task 2 lacks its toggle, 3 has one too many, 6 ends on the wrong title.
	if v.ModelMismatch != 3 {
		t.Errorf("model mismatches %d, want 3\n%s", v.ModelMismatch, strings.Join(v.Details, "\n"))
	}
}

func TestCheckReaderComparesWithTheTable(t *testing.T) {
	h := testHarness()
	rows := map[int64]taskView{1: {ID: 1, Title: "a", Version: 2}, 2: {ID: 2, Title: "b", Version: 1}}
	for _, c := range []struct {
		tasks map[int64]taskView
		bad   int
	}{
		{map[int64]taskView{1: {ID: 1, Title: "a", Version: 2}, 2: {ID: 2, Title: "b", Version: 1}}, 0},
		{map[int64]taskView{1: {ID: 1, Title: "a", Version: 1}, 2: {ID: 2, Title: "b", Version: 1}}, 1},
		{map[int64]taskView{1: {ID: 1, Title: "a", Version: 2}}, 1},
		{map[int64]taskView{1: {ID: 1, Title: "a", Version: 2}, 2: {ID: 2, Title: "b", Version: 1}, 3: {ID: 3}}, 1},
	} {
		v := &verification{}
		h.checkReader(v, &reader{h: h, user: "u", tasks: c.tasks}, rows)
		if v.ReaderDiffers != c.bad {
			t.Errorf("reader with %v: %d differing, want %d", c.tasks, v.ReaderDiffers, c.bad)
		}
	}
}

func TestParseFlags(t *testing.T) {
	base := []string{"--server", "s", "--database-admin-url", "postgres://postgres@127.0.0.1:1/postgres", "--redis-url", "redis://127.0.0.1:2/0", "--hook", "h _hook"}
	c, err := parseFlags(append(base, "--quick"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users != 4 || c.Crowd != 200 || len(c.Faults) != len(allFaults) || len(c.Hook) != 2 {
		t.Errorf("quick defaults: %+v", c)
	}
	c, err = parseFlags(append(base, "--faults", "kill9,poison"), nil)
	if err != nil || strings.Join(c.Faults, " ") != "kill9 poison" {
		t.Errorf("--faults kill9,poison: %v %v", c.Faults, err)
	}
	for _, bad := range [][]string{
		append(base, "--faults", "meteor"),
		{"--server", "s", "--database-admin-url", "postgres://postgres@10.0.0.1:5432/postgres", "--redis-url", "redis://127.0.0.1:2/0", "--faults", "none"},
		{"--server", "s", "--database-admin-url", "postgres://postgres@127.0.0.1:1/postgres", "--redis-url", "redis://127.0.0.1:2/0", "--faults", "redis-kill"},
	} {
		if _, err := parseFlags(bad, nil); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// fakeServer answers every socket with hello, then answers the first
// client frame with answer (a frame, or "close NNNN") and the second with a
// pong ("pong first FRAME": the pong before the answer).
func fakeServer(t *testing.T, answer string) *instance {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(8 << 20)
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","seq":0}`))
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
		if code, ok := strings.CutPrefix(answer, "close "); ok {
			n := map[string]websocket.StatusCode{"1001": websocket.StatusGoingAway, "1009": websocket.StatusMessageTooBig, "1011": websocket.StatusInternalError}[code]
			_ = c.Close(n, "")
			return
		}
		if _, _, err := c.Read(ctx); err != nil { // the ping
			return
		}
		pong := []byte(`{"type":"pong","id":"after-poison"}`)
		if after, ok := strings.CutPrefix(answer, "pong first "); ok {
			_ = c.Write(ctx, websocket.MessageText, pong)
			_ = c.Write(ctx, websocket.MessageText, []byte(after))
		} else {
			_ = c.Write(ctx, websocket.MessageText, []byte(answer))
			_ = c.Write(ctx, websocket.MessageText, pong)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	}))
	t.Cleanup(srv.Close)
	var port int
	if _, err := fmt.Sscanf(srv.URL, "http://127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	return &instance{name: "fake", port: port}
}

func TestPoisonVerdicts(t *testing.T) {
	byName := func(name string) *poisonCase {
		for i := range poisonCases {
			if poisonCases[i].name == name {
				return &poisonCases[i]
			}
		}
		t.Fatalf("no poison case %q", name)
		return nil
	}
	for _, c := range []struct {
		poison, answer     string
		good, inconclusive bool
	}{
		{"NUL in mutation_id", `{"type":"error","id":"poison","re":"task.create","code":"bad_request"}`, true, false},
		{"NUL in mutation_id", `{"type":"error","id":"poison","re":"task.create","code":"internal"}`, false, false},
		{"NUL in mutation_id", `pong first {"type":"error","id":"poison","re":"task.create","code":"invalid"}`, true, false},
		{"lone surrogate in title", `pong first {"type":"reply","id":"poison","re":"task.create","task":{"id":3}}`, false, false},
		{"NUL in mutation_id", `{"type":"error","id":"poison","re":"task.create","code":"unavailable"}`, false, true},
		{"lone surrogate in title", `{"type":"reply","id":"poison","re":"task.create","task":{"id":3}}`, false, false},
		{"unknown type", `{"type":"pong","id":"after-poison"}`, false, false},
		{"huge frame", "close 1009", true, false},
		{"huge frame", "close 1011", false, false},
		{"unknown type", "close 1001", false, true},
		{"binary frame", `{"type":"error","re":"","code":"bad_request"}`, true, false},
	} {
		h := testHarness()
		h.tokens = map[string]string{"p": "token"}
		in := fakeServer(t, c.answer)
		answer, good, inconclusive := h.poisonOnce(context.Background(), in, "p", byName(c.poison), "tag")
		if good != c.good || inconclusive != c.inconclusive {
			t.Errorf("%s answered %s: verdict good=%v inconclusive=%v (%q), want %v %v", c.poison, c.answer, good, inconclusive, answer, c.good, c.inconclusive)
		}
	}
}
