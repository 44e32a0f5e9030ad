package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"tasksync"
	"tasksync/internal/testdb"
)

type historyBody struct {
	TaskID   int64 `json:"task_id"`
	Versions []struct {
		Seq     int64           `json:"seq"`
		Op      Op              `json:"op"`
		At      string          `json:"at"`
		Actor   string          `json:"actor"`
		Session *string         `json:"session"`
		Task    json.RawMessage `json:"task"`
	} `json:"versions"`
}

func (c *apiClient) history(t *testing.T, id int64, query string) historyBody {
	t.Helper()
	res := c.do(t, http.MethodGet, c.tasksPath(idPath(id)+"/history"+query), "")
	res.wantStatus(t, http.StatusOK)
	var h historyBody
	if err := json.Unmarshal(res.body, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHTTPHistoryAndRestore: a task's history lists its versions newest
// first with their actors, the tasks exactly as logged; undo of an edit and
// a completion returns to the version asked for as an ordinary update, and
// a deleted task comes back with its id.
func TestHTTPHistoryAndRestore(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	ctx := t.Context()

	created := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"v1","tags":["a"],"due_at":"2026-12-01T09:00:00Z","recurrence":"FREQ=DAILY","tz":"Europe/Paris"}`)
	created.wantStatus(t, http.StatusCreated)
	task := created.task(t)
	one := alice.tasksPath(idPath(task.ID))
	v2 := alice.do(t, http.MethodPatch, one, `{"title":"v2","priority":"high","recurrence":null}`)
	v2.wantStatus(t, http.StatusOK)
	if _, err := e.svc.SetCompleted(ctx, "alice", task.ID, ptr(true), MutationOptions{Actor: ActorSocket, Session: "sess-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE tasks SET description = 'by sql' WHERE id = $1`, task.ID); err != nil {
		t.Fatal(err)
	}

	h := alice.history(t, task.ID, "")
	var got []string
	for _, v := range h.Versions {
		sess := "-"
		if v.Session != nil {
			sess = *v.Session
		}
		var tk struct{ Version int }
		_ = json.Unmarshal(v.Task, &tk)
		got = append(got, fmt.Sprintf("%s v%d %s/%s", v.Op, tk.Version, v.Actor, sess))
	}
	want := []string{"updated v4 sql/-", "updated v3 socket/sess-1", "updated v2 rest/-", "created v1 rest/-"}
	if h.TaskID != task.ID || !reflect.DeepEqual(got, want) {
		t.Fatalf("history %d %v, want %v", h.TaskID, got, want)
	}
	// Each version is the task exactly as the API wrote it then.
	if !reflect.DeepEqual(mustJSONMap(t, h.Versions[3].Task), created.jsonObject(t)) ||
		!reflect.DeepEqual(mustJSONMap(t, h.Versions[2].Task), v2.jsonObject(t)) {
		t.Errorf("logged tasks differ from the REST answers")
	}
	if h.Versions[0].Seq != 4 || h.Versions[3].Seq != 1 {
		t.Errorf("seqs %d..%d", h.Versions[3].Seq, h.Versions[0].Seq)
	}
	if limited := alice.history(t, task.ID, "?limit=2"); len(limited.Versions) != 2 || limited.Versions[0].Seq != 4 {
		t.Errorf("limit=2: %+v", limited)
	}

	// Undo the completion (and the SQL edit): back to version 2, as an
	// update with its own version and event, made by REST.
	res := alice.do(t, http.MethodPost, one+"/restore", `{"version":2}`)
	res.wantStatus(t, http.StatusOK)
	back := res.task(t)
	if back.Version != 5 || back.Title != "v2" || back.Completed || back.Description != "" || back.Priority != PriorityHigh ||
		back.Recurrence != nil || back.TZ == nil || *back.TZ != "Europe/Paris" {
		t.Errorf("restored to version 2: %+v", back)
	}
	// Again: nothing to change, no event.
	alice.do(t, http.MethodPost, one+"/restore", `{"version":2}`).wantStatus(t, http.StatusOK)
	// Version 1 had the rule.
	if v1 := alice.do(t, http.MethodPost, one+"/restore", `{"version":1}`).task(t); v1.Version != 6 || v1.Recurrence == nil || v1.Title != "v1" {
		t.Errorf("restored to version 1: %+v", v1)
	}
	// A task that is not deleted cannot be undeleted.
	alice.do(t, http.MethodPost, one+"/restore", `{}`).wantError(t, http.StatusConflict, "conflict")
	alice.do(t, http.MethodPost, one+"/restore", `{"version":99}`).wantError(t, http.StatusNotFound, "not_found")
	alice.do(t, http.MethodPost, one+"/restore", `{"version":2}`, "If-Match", `"5"`).wantError(t, http.StatusPreconditionFailed, "version_mismatch")

	// Delete, then restore: the same id, the last fields, the version
	// going on; the change log says created, by REST.
	alice.do(t, http.MethodDelete, one, "").wantStatus(t, http.StatusNoContent)
	alice.do(t, http.MethodGet, one, "").wantError(t, http.StatusNotFound, "not_found")
	res = alice.do(t, http.MethodPost, one+"/restore", "", "Idempotency-Key", "undo-1")
	res.wantStatus(t, http.StatusCreated)
	again := res.task(t)
	if again.ID != task.ID || again.Title != "v1" || again.Version != 7 || !again.CreatedAt.Equal(task.CreatedAt) || again.Recurrence == nil {
		t.Errorf("undeleted %+v (was %+v)", again, task)
	}
	if loc := res.header.Get("Location"); loc != one {
		t.Errorf("Location %q", loc)
	}
	// A retry with the key answers the same; without, it is a conflict.
	replay := alice.do(t, http.MethodPost, one+"/restore", "", "Idempotency-Key", "undo-1")
	replay.wantStatus(t, http.StatusCreated)
	if replay.task(t).Version != 7 {
		t.Errorf("replay: %s", replay.body)
	}
	alice.do(t, http.MethodPost, one+"/restore", `{}`).wantError(t, http.StatusConflict, "conflict")
	if got := alice.get(t, task.ID); got.Version != 7 {
		t.Errorf("after restore GET %+v", got)
	}
	h = alice.history(t, task.ID, "?limit=3")
	if h.Versions[0].Op != OpCreated || h.Versions[0].Actor != ActorREST || h.Versions[1].Op != OpDeleted || h.Versions[1].Task != nil && string(h.Versions[1].Task) != "null" {
		t.Errorf("history after undelete: %+v", h.Versions[:2])
	}
	// And after a delete, restoring an earlier version brings it back as that.
	alice.do(t, http.MethodDelete, one, "").wantStatus(t, http.StatusNoContent)
	if v2 := alice.do(t, http.MethodPost, one+"/restore", `{"version":2}`).task(t); v2.ID != task.ID || v2.Title != "v2" || v2.Version != 8 {
		t.Errorf("undeleted as version 2: %+v", v2)
	}
}

// TestHTTPHistoryIsPerUser: another user can neither read nor restore a
// task, deleted or not, and learns nothing about it (404 like a task that
// never existed).
func TestHTTPHistoryIsPerUser(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice, bob := e.as(t, "alice"), e.as(t, "bob")
	kept := alice.create(t, `{"title":"kept"}`)
	gone := alice.create(t, `{"title":"gone"}`)
	alice.do(t, http.MethodDelete, alice.tasksPath(idPath(gone.ID)), "").wantStatus(t, http.StatusNoContent)

	for _, id := range []int64{kept.ID, gone.ID, 999999} {
		p := bob.tasksPath(idPath(id))
		bob.do(t, http.MethodGet, p+"/history", "").wantError(t, http.StatusNotFound, "not_found")
		bob.do(t, http.MethodPost, p+"/restore", "").wantError(t, http.StatusNotFound, "not_found")
		bob.do(t, http.MethodPost, p+"/restore", `{"version":1}`).wantError(t, http.StatusNotFound, "not_found")
		// Nor through alice's path with bob's token.
		bob.do(t, http.MethodGet, alice.tasksPath(idPath(id))+"/history", "").wantError(t, http.StatusForbidden, "forbidden")
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM task_events WHERE user_id = 'bob'`); n != 0 {
		t.Errorf("bob has %d events", n)
	}
	if got := alice.get(t, kept.ID); got.Version != 1 {
		t.Errorf("kept task changed: %+v", got)
	}
	alice.do(t, http.MethodGet, alice.tasksPath(idPath(gone.ID)), "").wantError(t, http.StatusNotFound, "not_found")

	// Bad parameters are the client's mistake.
	p := alice.tasksPath(idPath(kept.ID))
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=x", "?limit=01"} {
		alice.do(t, http.MethodGet, p+"/history"+q, "").wantError(t, http.StatusBadRequest, "bad_request")
	}
	for _, body := range []string{`{"version":0}`, `{"version":-1}`, `{"version":1.5}`, `{"version":"1"}`, `{"version":99999999999}`} {
		alice.do(t, http.MethodPost, p+"/restore", body).wantError(t, http.StatusUnprocessableEntity, "invalid")
	}
	alice.do(t, http.MethodPost, p+"/restore", `[1]`).wantError(t, http.StatusBadRequest, "bad_request")
}

// TestRestoreConcurrently: many clients undeleting the same task at once
// (in shared batches and alone) bring it back exactly once; the others are
// told conflict, and no batch is rolled back.
func TestRestoreConcurrently(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	ctx := context.Background()
	res, err := e.svc.Create(ctx, "alice", Fields{Title: ptr("once")}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Delete(ctx, "alice", res.TaskID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range n {
		wg.Go(func() {
			_, err := e.svc.Restore(ctx, "alice", res.TaskID, 0, MutationOptions{Actor: ActorSocket})
			code := "ok"
			if err != nil {
				code = string(tasksync.ErrorCode(err))
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["ok"] != 1 || codes["conflict"] != n-1 {
		t.Errorf("outcomes %v, want 1 ok and %d conflict", codes, n-1)
	}
	if e.svc.BatchReruns() != 0 {
		t.Errorf("%d reruns: a restore failed its batch", e.svc.BatchReruns())
	}
	if c := countRows(t, e.db, `SELECT count(*) FROM task_events WHERE op = 'created'`); c != 2 {
		t.Errorf("%d created events, want 2 (create, restore)", c)
	}
}

// TestRestoreKeepsReminders: an undeleted task gets its reminder job back,
// and returning to a version with another remind_at moves the job, in the
// restore's transaction.
func TestRestoreKeepsReminders(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE scheduler_calls (call text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	sch := &recordingScheduler{}
	svc := NewService(db.Pool)
	svc.UseScheduler(sch)
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	later := at.Add(time.Hour)
	res, err := svc.Create(ctx, "u", Fields{Title: ptr("call"), RemindAt: &at, RemindSet: true}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.TaskID
	if _, err := svc.Update(ctx, "u", id, Fields{RemindAt: &later, RemindSet: true}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, "u", id, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	sch.take()
	if _, err := svc.Restore(ctx, "u", id, 0, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := sch.take(), []string{fmt.Sprintf("schedule %d %s", id, later.Format(TimeLayout))}; !reflect.DeepEqual(got, want) {
		t.Errorf("undelete: scheduler calls %q, want %q", got, want)
	}
	if _, err := svc.Restore(ctx, "u", id, 1, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := sch.take(), []string{fmt.Sprintf("cancel %d", id), fmt.Sprintf("schedule %d %s", id, at.Format(TimeLayout))}; !reflect.DeepEqual(got, want) {
		t.Errorf("back to version 1: scheduler calls %q, want %q", got, want)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM scheduler_calls`).Scan(&n); err != nil || n != 7 {
		t.Errorf("%d scheduler calls committed (%v), want 7", n, err)
	}
}
