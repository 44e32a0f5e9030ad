package tasks

import (
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"tasksync/internal/testdb"
)

func TestIdempotentCreateReplays(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	body := `{"title":"once","tags":["x"],"due_date":"2026-05-01"}`

	first := alice.do(t, http.MethodPost, alice.tasksPath(""), body, "Idempotency-Key", "key-1")
	first.wantStatus(t, http.StatusCreated)
	if h := first.header.Get("Idempotent-Replayed"); h != "" {
		t.Errorf("first request: Idempotent-Replayed %q", h)
	}
	second := alice.do(t, http.MethodPost, alice.tasksPath(""), body, "Idempotency-Key", "key-1")
	second.wantStatus(t, http.StatusCreated)
	if h := second.header.Get("Idempotent-Replayed"); h != "true" {
		t.Errorf("retry: Idempotent-Replayed %q, want true", h)
	}
	if !reflect.DeepEqual(first.jsonObject(t), second.jsonObject(t)) {
		t.Errorf("retry body %s\nwant %s", second.body, first.body)
	}
	for _, h := range []string{"Location", "ETag"} {
		if first.header.Get(h) != second.header.Get(h) || first.header.Get(h) == "" {
			t.Errorf("%s: first %q, retry %q", h, first.header.Get(h), second.header.Get(h))
		}
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM task_events`); n != 1 {
		t.Errorf("%d events, want 1", n)
	}

	// The same key with another body is refused and creates nothing.
	res := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"twice"}`, "Idempotency-Key", "key-1")
	res.wantError(t, http.StatusConflict, "conflict")
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks after the conflicting request, want 1", n)
	}
	// A key used for a create cannot be reused for an update either.
	id := first.task(t).ID
	res = alice.do(t, http.MethodPatch, alice.tasksPath(idPath(id)), `{"title":"once"}`, "Idempotency-Key", "key-1")
	res.wantError(t, http.StatusConflict, "conflict")

	// A new key creates a new task.
	other := alice.do(t, http.MethodPost, alice.tasksPath(""), body, "Idempotency-Key", "key-2")
	other.wantStatus(t, http.StatusCreated)
	if other.task(t).ID == id {
		t.Errorf("a new key replayed the old task")
	}
}

func TestIdempotentCreateConcurrent(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	const n = 10
	results := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := alice.send(t.Context(), http.MethodPost, alice.tasksPath(""), `{"title":"race"}`, "Idempotency-Key", "same-key")
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	close(start)
	wg.Wait()

	replayed := 0
	ids := map[int64]bool{}
	for _, res := range results {
		res.wantStatus(t, http.StatusCreated)
		ids[res.task(t).ID] = true
		if res.header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if len(ids) != 1 || replayed != n-1 {
		t.Errorf("ids %v, %d replayed; want one id and %d replays", ids, replayed, n-1)
	}
	if c := countRows(t, e.db, `SELECT count(*) FROM tasks`); c != 1 {
		t.Errorf("%d tasks, want 1", c)
	}
	if c := countRows(t, e.db, `SELECT count(*) FROM task_events`); c != 1 {
		t.Errorf("%d events, want 1", c)
	}
}

func TestIdempotencyKeysArePerUser(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice, bob := e.as(t, "alice"), e.as(t, "bob")
	a := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"shared key"}`, "Idempotency-Key", "k")
	a.wantStatus(t, http.StatusCreated)
	b := bob.do(t, http.MethodPost, bob.tasksPath(""), `{"title":"shared key"}`, "Idempotency-Key", "k")
	b.wantStatus(t, http.StatusCreated)
	at, bt := a.task(t), b.task(t)
	if bt.ID == at.ID || bt.UserID != "bob" || b.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("bob's create with alice's key: %s (replayed %q)", b.body, b.header.Get("Idempotent-Replayed"))
	}
	// Another body is not a conflict for another user either.
	bob.do(t, http.MethodPost, bob.tasksPath(""), `{"title":"different"}`, "Idempotency-Key", "k").wantError(t, http.StatusConflict, "conflict")
	c := e.as(t, "carol").do(t, http.MethodPost, "/api/carol/tasks", `{"title":"different"}`, "Idempotency-Key", "k")
	c.wantStatus(t, http.StatusCreated)
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 3 {
		t.Errorf("%d tasks, want 3", n)
	}
}

func TestIdempotentChangesReplay(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"t"}`)
	one := alice.tasksPath(idPath(task.ID))

	// A retried PATCH with If-Match returns the first answer, not 412.
	first := alice.do(t, http.MethodPatch, one, `{"title":"u"}`, "Idempotency-Key", "p", "If-Match", `"1"`)
	first.wantStatus(t, http.StatusOK)
	retry := alice.do(t, http.MethodPatch, one, `{"title":"u"}`, "Idempotency-Key", "p", "If-Match", `"1"`)
	retry.wantStatus(t, http.StatusOK)
	if !reflect.DeepEqual(first.jsonObject(t), retry.jsonObject(t)) || retry.task(t).Version != 2 {
		t.Errorf("PATCH retry %s, want %s", retry.body, first.body)
	}
	// A retried toggle does not toggle again.
	c1 := alice.do(t, http.MethodPost, one+"/complete", "", "Idempotency-Key", "c")
	c2 := alice.do(t, http.MethodPost, one+"/complete", "", "Idempotency-Key", "c")
	if !c1.task(t).Completed || !c2.task(t).Completed || c2.task(t).Version != 3 {
		t.Errorf("toggle retry: %s then %s", c1.body, c2.body)
	}
	// A retried DELETE answers 204 again instead of 404.
	alice.do(t, http.MethodDelete, one, "", "Idempotency-Key", "d").wantStatus(t, http.StatusNoContent)
	alice.do(t, http.MethodDelete, one, "", "Idempotency-Key", "d").wantStatus(t, http.StatusNoContent)
	alice.do(t, http.MethodDelete, one, "").wantError(t, http.StatusNotFound, "not_found")
	if n := countRows(t, e.db, `SELECT count(*) FROM task_events`); n != 4 {
		t.Errorf("%d events, want 4 (create, patch, complete, delete)", n)
	}
}

func TestPruneIdempotencyKeys(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	for _, key := range []string{"old", "new"} {
		if _, err := svc.Create(ctx, "alice", Fields{Title: ptr(key)}, MutationOptions{IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '2 hours' WHERE key = 'old'`); err != nil {
		t.Fatal(err)
	}
	n, err := svc.PruneIdempotencyKeys(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	// The pruned key is free again: a new request with it creates a task.
	res, err := svc.Create(ctx, "alice", Fields{Title: ptr("old")}, MutationOptions{IdempotencyKey: "old"})
	if err != nil || res.Replayed {
		t.Errorf("reuse of a pruned key: %+v, %v", res, err)
	}
	res, err = svc.Create(ctx, "alice", Fields{Title: ptr("new")}, MutationOptions{IdempotencyKey: "new"})
	if err != nil || !res.Replayed {
		t.Errorf("a kept key must still replay: %+v, %v", res, err)
	}
	if c := countRows(t, db, `SELECT count(*) FROM tasks`); c != 3 {
		t.Errorf("%d tasks, want 3", c)
	}
}
