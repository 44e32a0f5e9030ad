package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"tasksync"
	"tasksync/internal/testdb"
)

func ptr[T any](v T) *T { return &v }

// event is one row of task_events.
type event struct {
	Seq    int64
	Op     Op
	TaskID int64
	Task   []byte // the jsonb text; nil for deletes
}

func events(t *testing.T, db *testdb.DB, user string) []event {
	t.Helper()
	rows, err := db.Pool.Query(t.Context(), `SELECT seq, op, task_id, task::text FROM task_events WHERE user_id = $1 ORDER BY seq`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var task *string
		if err := rows.Scan(&e.Seq, &e.Op, &e.TaskID, &task); err != nil {
			t.Fatal(err)
		}
		if task != nil {
			e.Task = []byte(*task)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventVersion is the version carried by an event's task (0 for deletes).
func eventVersion(t *testing.T, e event) int {
	t.Helper()
	if e.Task == nil {
		return 0
	}
	var task Task
	if err := json.Unmarshal(e.Task, &task); err != nil {
		t.Fatalf("event %d: %v", e.Seq, err)
	}
	return task.Version
}

func wantCode(t *testing.T, err error, code tasksync.Code) {
	t.Helper()
	if got := tasksync.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %s, want %s", err, got, code)
	}
}

func TestServiceVersionsAndEvents(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	none := MutationOptions{}

	res, err := svc.Create(ctx, "alice", Fields{Title: ptr(" a ")}, none)
	if err != nil {
		t.Fatal(err)
	}
	if res.Op != OpCreated || res.Task == nil || res.Task.Version != 1 || res.Task.Title != "a" || res.TaskID != res.Task.ID || res.Replayed {
		t.Fatalf("create: %+v", res)
	}
	id := res.TaskID
	due := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	sameDue := due.In(time.FixedZone("x", 3*3600))

	steps := []struct {
		name    string
		do      func() (Result, error)
		version int // the task's version afterwards
	}{
		{"title", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{Title: ptr("b")}, none) }, 2},
		{"same title", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{Title: ptr("b")}, none) }, 2},
		{"same title untrimmed", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{Title: ptr("  b\t")}, none) }, 2},
		{"nothing", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{}, none) }, 2},
		{"replace with same", func() (Result, error) { return svc.Replace(ctx, "alice", id, Fields{Title: ptr("b")}, none) }, 2},
		{"complete", func() (Result, error) { return svc.SetCompleted(ctx, "alice", id, ptr(true), none) }, 3},
		{"complete again", func() (Result, error) { return svc.SetCompleted(ctx, "alice", id, ptr(true), none) }, 3},
		{"toggle", func() (Result, error) { return svc.SetCompleted(ctx, "alice", id, nil, none) }, 4},
		{"tags", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{Tags: &[]string{"x", "y"}}, none) }, 5},
		{"same tags, repeated", func() (Result, error) {
			return svc.Update(ctx, "alice", id, Fields{Tags: &[]string{" x", "X", "y", "Y "}}, none)
		}, 5},
		{"due", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{DueSet: true, DueAt: &due}, none) }, 6},
		{"same due in another zone", func() (Result, error) {
			return svc.Update(ctx, "alice", id, Fields{DueSet: true, DueAt: &sameDue}, none)
		}, 6},
		{"priority", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{Priority: ptr(PriorityHigh)}, none) }, 7},
		{"clear due", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{DueSet: true}, none) }, 8},
		{"clear due again", func() (Result, error) { return svc.Update(ctx, "alice", id, Fields{DueSet: true}, none) }, 8},
	}
	for _, s := range steps {
		res, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Task == nil || res.Task.Version != s.version || res.Op != OpUpdated {
			t.Fatalf("%s: %+v, want version %d", s.name, res, s.version)
		}
		got, err := svc.Get(ctx, "alice", id)
		if err != nil || got.Version != s.version || !reflect.DeepEqual(got, *res.Task) {
			t.Fatalf("%s: Get = %+v, %v; want %+v", s.name, got, err, *res.Task)
		}
	}
	if _, err := svc.Delete(ctx, "alice", id, none); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Get(ctx, "alice", id)
	wantCode(t, err, tasksync.CodeNotFound)

	evs := events(t, db, "alice")
	var seqs []int64
	var ops []Op
	var versions []int
	for _, e := range evs {
		seqs, ops, versions = append(seqs, e.Seq), append(ops, e.Op), append(versions, eventVersion(t, e))
		if e.TaskID != id {
			t.Errorf("event %d for task %d, want %d", e.Seq, e.TaskID, id)
		}
	}
	wantOps := []Op{OpCreated, OpUpdated, OpUpdated, OpUpdated, OpUpdated, OpUpdated, OpUpdated, OpUpdated, OpDeleted}
	if !slices.Equal(seqs, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}) || !slices.Equal(ops, wantOps) ||
		!slices.Equal(versions, []int{1, 2, 3, 4, 5, 6, 7, 8, 0}) {
		t.Errorf("events: seqs %v ops %v versions %v", seqs, ops, versions)
	}
	if string(evs[len(evs)-1].Task) != "" {
		t.Errorf("delete event carries a task: %s", evs[len(evs)-1].Task)
	}
}

func TestServiceErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	res, err := svc.Create(ctx, "alice", Fields{Title: ptr("a")}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.TaskID

	_, err = svc.Create(ctx, "alice", Fields{}, MutationOptions{})
	wantCode(t, err, tasksync.CodeInvalid)
	_, err = svc.Update(ctx, "alice", id+100, Fields{Title: ptr("x")}, MutationOptions{})
	wantCode(t, err, tasksync.CodeNotFound)
	_, err = svc.Update(ctx, "bob", id, Fields{Title: ptr("x")}, MutationOptions{})
	wantCode(t, err, tasksync.CodeNotFound)
	_, err = svc.Delete(ctx, "bob", id, MutationOptions{})
	wantCode(t, err, tasksync.CodeNotFound)
	_, err = svc.Update(ctx, "alice", id, Fields{Title: ptr("x")}, MutationOptions{IfVersion: 2})
	wantCode(t, err, tasksync.CodeVersionMismatch)
	var appErr *tasksync.Error
	if !errors.As(err, &appErr) || !reflect.DeepEqual(appErr.Current, *res.Task) {
		t.Errorf("version mismatch current %#v, want %+v", appErr.Current, *res.Task)
	}
	_, err = svc.Create(ctx, "alice", Fields{Title: ptr("x")}, MutationOptions{IdempotencyKey: string(make([]byte, MaxIdempotencyKey+1))})
	wantCode(t, err, tasksync.CodeBadRequest)

	if got, err := svc.Get(ctx, "alice", id); err != nil || got.Version != 1 || got.Title != "a" {
		t.Errorf("failed mutations changed the task: %+v %v", got, err)
	}
	if evs := events(t, db, "alice"); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
	if evs := events(t, db, "bob"); len(evs) != 0 {
		t.Errorf("bob has %d events", len(evs))
	}
}

// TestServiceEventsConcurrent has many goroutines change one user's tasks
// at once (some tasks shared, so that writers contend): the user's
// sequence must be exactly 1..N, and each task's versions must rise with
// the sequence (events in commit order).
func TestServiceEventsConcurrent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	const (
		workers   = 8
		mutations = 25
		shared    = 4
	)
	var sharedIDs []int64
	for i := range shared {
		res, err := svc.Create(ctx, "alice", Fields{Title: ptr(fmt.Sprintf("shared %d", i))}, MutationOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sharedIDs = append(sharedIDs, res.TaskID)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range workers {
		wg.Go(func() {
			<-start
			var own int64
			for i := range mutations {
				target := sharedIDs[(g+i)%shared]
				var err error
				switch i % 5 {
				case 0:
					var res Result
					res, err = svc.Create(ctx, "alice", Fields{Title: ptr(fmt.Sprintf("own %d/%d", g, i))}, MutationOptions{})
					own = res.TaskID
				case 1: // always a change: the title is new
					_, err = svc.Update(ctx, "alice", target, Fields{Title: ptr(fmt.Sprintf("by %d at %d", g, i))}, MutationOptions{})
				case 2: // a toggle always changes
					_, err = svc.SetCompleted(ctx, "alice", target, nil, MutationOptions{})
				case 3:
					_, err = svc.Update(ctx, "alice", own, Fields{Description: ptr("changed")}, MutationOptions{})
				case 4:
					_, err = svc.Delete(ctx, "alice", own, MutationOptions{})
				}
				if err != nil {
					t.Errorf("worker %d, mutation %d: %v", g, i, err)
					return
				}
			}
		})
	}
	// Another user writing at the same time has a sequence of its own.
	wg.Go(func() {
		<-start
		for i := range mutations {
			if _, err := svc.Create(ctx, "bob", Fields{Title: ptr(fmt.Sprint(i))}, MutationOptions{}); err != nil {
				t.Errorf("bob %d: %v", i, err)
				return
			}
		}
	})
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	want := shared + workers*mutations
	evs := events(t, db, "alice")
	if len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	lastVersion := map[int64]int{}
	deleted := map[int64]bool{}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the sequence has a gap or a repeat", i, e.Seq)
		}
		if deleted[e.TaskID] {
			t.Errorf("seq %d: %s after the task was deleted", e.Seq, e.Op)
		}
		v := eventVersion(t, e)
		switch e.Op {
		case OpCreated:
			if _, seen := lastVersion[e.TaskID]; seen || v != 1 {
				t.Errorf("seq %d: created task %d at version %d", e.Seq, e.TaskID, v)
			}
		case OpUpdated:
			if prev := lastVersion[e.TaskID]; v != prev+1 {
				t.Errorf("seq %d: task %d at version %d after version %d: events out of commit order", e.Seq, e.TaskID, v, prev)
			}
		case OpDeleted:
			deleted[e.TaskID] = true
		}
		lastVersion[e.TaskID] = v
	}
	for _, id := range sharedIDs {
		// 1 + 8 workers × 10 changes each spread over 4 tasks.
		if got := lastVersion[id]; got != 1+workers*mutations*2/5/shared {
			t.Errorf("shared task %d ends at version %d, want %d", id, got, 1+workers*mutations*2/5/shared)
		}
	}
	if n := countRows(t, db, `SELECT seq FROM user_seqs WHERE user_id = 'alice'`); n != want {
		t.Errorf("user_seqs says %d, want %d", n, want)
	}
	bobs := events(t, db, "bob")
	if len(bobs) != mutations || bobs[0].Seq != 1 || bobs[len(bobs)-1].Seq != mutations {
		t.Errorf("bob's events: %d, from %d", len(bobs), bobs[0].Seq)
	}
}

func TestPlainSQLProducesEvents(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	exec := func(sql string, args ...any) int64 {
		t.Helper()
		tag, err := db.Pool.Exec(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return tag.RowsAffected()
	}
	// jsonOf is the REST JSON of a task as read by the service.
	jsonOf := func(user string, id int64) map[string]any {
		t.Helper()
		task, err := svc.Get(ctx, user, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		return mustJSONMap(t, b)
	}

	var id int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO tasks (user_id, title, tags, due_at) VALUES ('alice', 'sql', '{a,b}', '2026-04-05 06:07:08.123456+02') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	afterInsert := jsonOf("alice", id)
	if n := exec(`UPDATE tasks SET title = 'sql 2' WHERE id = $1`, id); n != 1 {
		t.Errorf("update affected %d rows", n)
	}
	afterUpdate := jsonOf("alice", id)
	if afterUpdate["version"] != 2.0 || afterUpdate["updated_at"] == afterInsert["updated_at"] {
		t.Errorf("plain UPDATE: version %v updated_at %v (was %v)", afterUpdate["version"], afterUpdate["updated_at"], afterInsert["updated_at"])
	}
	// Writing the same values, or only columns that are not the task's
	// fields, changes nothing.
	if n := exec(`UPDATE tasks SET title = 'sql 2', tags = '{a,b}' WHERE id = $1`, id); n != 0 {
		t.Errorf("no-op update affected %d rows", n)
	}
	exec(`UPDATE tasks SET version = 99 WHERE id = $1`, id)
	if got := jsonOf("alice", id); !reflect.DeepEqual(got, afterUpdate) {
		t.Errorf("no-op updates changed the task: %v", got)
	}
	// Moving a task to another user: gone for one, new for the other.
	exec(`UPDATE tasks SET user_id = 'bob' WHERE id = $1`, id)
	moved := jsonOf("bob", id)
	exec(`INSERT INTO tasks (user_id, title) VALUES ('alice', 'x'), ('alice', 'y'), ('bob', 'z')`)
	exec(`DELETE FROM tasks WHERE id = $1`, id)
	exec(`DELETE FROM tasks WHERE user_id = 'alice'`)

	type row struct {
		seq  int64
		op   Op
		task map[string]any
	}
	flatten := func(evs []event) []row {
		var out []row
		for _, e := range evs {
			r := row{seq: e.Seq, op: e.Op}
			if e.Task != nil {
				r.task = mustJSONMap(t, e.Task)
			}
			out = append(out, r)
		}
		return out
	}
	alice := flatten(events(t, db, "alice"))
	if len(alice) != 7 {
		t.Fatalf("alice has %d events, want 7: %v", len(alice), alice)
	}
	if !reflect.DeepEqual(alice[0], row{1, OpCreated, afterInsert}) || !reflect.DeepEqual(alice[1], row{2, OpUpdated, afterUpdate}) ||
		alice[2].seq != 3 || alice[2].op != OpDeleted || alice[2].task != nil {
		t.Errorf("alice's first events:\n%v\nwant created %v\nupdated %v\nthen deleted", alice[:3], afterInsert, afterUpdate)
	}
	for i, r := range alice[3:] {
		wantOp := OpCreated
		if i >= 2 {
			wantOp = OpDeleted
		}
		if r.seq != int64(i+4) || r.op != wantOp {
			t.Errorf("alice event %d: %+v, want seq %d %s", i+3, r, i+4, wantOp)
		}
	}
	bob := flatten(events(t, db, "bob"))
	if len(bob) != 3 || !reflect.DeepEqual(bob[0], row{1, OpCreated, moved}) || bob[1].op != OpCreated || bob[1].seq != 2 ||
		!reflect.DeepEqual(bob[2], row{3, OpDeleted, nil}) {
		t.Errorf("bob's events: %v", bob)
	}
	if moved["version"] != 3.0 || moved["user_id"] != "bob" {
		t.Errorf("moved task: %v", moved)
	}
}

// TestEventJSONMatchesREST checks that the change log carries each task in
// exactly the shape REST returns, timestamps byte for byte.
func TestEventJSONMatchesREST(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")

	var bodies []response
	record := func(res response, status int) response {
		t.Helper()
		res.wantStatus(t, status)
		bodies = append(bodies, res)
		return res
	}
	first := record(alice.do(t, http.MethodPost, alice.tasksPath(""),
		`{"title":"He said \"hi\"\n\t😀 <&> \u2028","description":"ünïcödé","tags":["b","a"],"due_date":"2026-12-01T17:00:00.123456+02:00"}`), http.StatusCreated).task(t)
	one := alice.tasksPath(idPath(first.ID))
	record(alice.do(t, http.MethodPatch, one, `{"priority":"high","due_date":"2026-12-01T17:00:00.1Z"}`), http.StatusOK)
	record(alice.do(t, http.MethodPatch, one+"/complete", ""), http.StatusOK)
	record(alice.do(t, http.MethodPut, one, `{"title":"replaced","due_date":"2026-12-01"}`), http.StatusOK)
	for _, due := range []string{"0001-01-01", "9999-12-31T23:59:59.999999Z", "2026-06-30T23:59:59.000001-00:30", "2000-02-29T00:00:00Z"} {
		record(alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"due","due_date":"`+due+`"}`), http.StatusCreated)
	}
	record(alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"no due"}`), http.StatusCreated)
	rec := record(alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"every","due_at":"2026-10-25T01:30:00.000001+02:00","remind_at":"2026-10-24T23:00:00Z","recurrence":"FREQ=WEEKLY;BYDAY=SU","tz":"Europe/Berlin"}`), http.StatusCreated).task(t)
	record(alice.do(t, http.MethodPatch, alice.tasksPath(idPath(rec.ID)), `{"recurrence":null,"tz":null,"remind_at":"9999-12-31T23:59:59.999999Z"}`), http.StatusOK)

	evs := events(t, e.db, "alice")
	if len(evs) != len(bodies) {
		t.Fatalf("%d events for %d changes", len(evs), len(bodies))
	}
	for i, ev := range evs {
		got, want := mustJSONMap(t, ev.Task), bodies[i].jsonObject(t)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\n got %s\nwant %s", ev.Seq, ev.Task, bodies[i].body)
		}
	}
	// And the current state over REST is the last event of each task.
	last := map[int64][]byte{}
	for _, ev := range evs {
		last[ev.TaskID] = ev.Task
	}
	for id, task := range last {
		got := alice.do(t, http.MethodGet, alice.tasksPath(idPath(id)), "")
		if !reflect.DeepEqual(got.jsonObject(t), mustJSONMap(t, task)) {
			t.Errorf("task %d: GET %s, last event %s", id, got.body, task)
		}
	}
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()

	tasks, seq, err := svc.Snapshot(ctx, "nobody")
	if err != nil || len(tasks) != 0 || seq != 0 {
		t.Fatalf("empty snapshot: %v %d %v", tasks, seq, err)
	}

	var ids []int64
	for i := range 3 {
		res, err := svc.Create(ctx, "alice", Fields{Title: ptr(fmt.Sprint("t", i))}, MutationOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.TaskID)
	}
	if _, err := svc.Update(ctx, "alice", ids[2], Fields{Title: ptr("changed")}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, "alice", ids[1], MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	tasks, seq, err = svc.Snapshot(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if seq != 5 || len(tasks) != 2 || tasks[0].ID != ids[0] || tasks[1].ID != ids[2] || tasks[1].Title != "changed" || tasks[1].Version != 2 {
		t.Errorf("snapshot: seq %d tasks %+v", seq, tasks)
	}
	for _, task := range tasks {
		if got, err := svc.Get(ctx, "alice", task.ID); err != nil || !reflect.DeepEqual(got, task) {
			t.Errorf("snapshot task %+v, Get %+v %v", task, got, err)
		}
	}
}

// TestSnapshotConsistentUnderWrites takes snapshots while others write and
// checks each against the log: replaying events 1..seq must give exactly the
// snapshot's tasks, so a client that loads a snapshot and then applies
// events after seq misses nothing and applies nothing twice.
func TestSnapshotConsistentUnderWrites(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()

	type snap struct {
		tasks []Task
		seq   int64
	}
	var (
		snaps   []snap
		writers sync.WaitGroup
		reader  sync.WaitGroup
	)
	done := make(chan struct{})
	reader.Go(func() {
		for {
			tasks, seq, err := svc.Snapshot(ctx, "alice")
			if err != nil {
				t.Error(err)
				return
			}
			snaps = append(snaps, snap{tasks, seq})
			select {
			case <-done:
				return
			default:
			}
		}
	})
	for g := range 4 {
		writers.Go(func() {
			var mine []int64
			for i := range 20 {
				var err error
				switch {
				case i%4 == 3 && len(mine) > 0:
					_, err = svc.Delete(ctx, "alice", mine[0], MutationOptions{})
					mine = mine[1:]
				case i%2 == 1 && len(mine) > 0:
					_, err = svc.SetCompleted(ctx, "alice", mine[len(mine)-1], nil, MutationOptions{})
				default:
					var res Result
					res, err = svc.Create(ctx, "alice", Fields{Title: ptr(fmt.Sprintf("%d-%d", g, i))}, MutationOptions{})
					mine = append(mine, res.TaskID)
				}
				if err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	reader.Wait()
	final, finalSeq, err := svc.Snapshot(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	snaps = append(snaps, snap{final, finalSeq})
	if len(snaps) < 2 {
		t.Fatalf("only %d snapshots", len(snaps))
	}

	evs := events(t, db, "alice")
	if int64(len(evs)) != finalSeq {
		t.Fatalf("%d events, final snapshot seq %d", len(evs), finalSeq)
	}
	replay := func(upTo int64) map[int64]map[string]any {
		state := map[int64]map[string]any{}
		for _, e := range evs[:upTo] {
			if e.Op == OpDeleted {
				delete(state, e.TaskID)
			} else {
				state[e.TaskID] = mustJSONMap(t, e.Task)
			}
		}
		return state
	}
	for _, s := range snaps {
		if s.seq > int64(len(evs)) {
			t.Fatalf("snapshot seq %d beyond the log (%d)", s.seq, len(evs))
		}
		got := map[int64]map[string]any{}
		for _, task := range s.tasks {
			b, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			got[task.ID] = mustJSONMap(t, b)
		}
		if want := replay(s.seq); !reflect.DeepEqual(got, want) {
			t.Errorf("snapshot at seq %d has %d tasks; replaying the log to it gives %d (or different contents)", s.seq, len(got), len(want))
		}
	}
}

// TestIdempotentReplayStoresResult checks the stored result a retry gets at
// the service level, after the task has moved on.
func TestIdempotentReplayStoresResult(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts := MutationOptions{IdempotencyKey: "k"}
	first, err := svc.Create(ctx, "alice", Fields{Title: ptr("a")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, "alice", first.TaskID, Fields{Title: ptr("b")}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err := svc.Create(ctx, "alice", Fields{Title: ptr("a")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.TaskID != first.TaskID || again.Task == nil || again.Task.Version != 1 || again.Task.Title != "a" {
		t.Errorf("replay: %+v (task %+v), want the first result", again, again.Task)
	}
	if a, b := jsonBytes(t, again.Task), jsonBytes(t, first.Task); a != b {
		t.Errorf("replayed task %+v, first %+v", *again.Task, *first.Task)
	}
	_, err = svc.Create(ctx, "alice", Fields{Title: ptr("other")}, opts)
	wantCode(t, err, tasksync.CodeConflict)
	if n := countRows(t, db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks", n)
	}
}

func jsonBytes(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
