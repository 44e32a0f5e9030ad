package tasks

import (
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestIsolation has Bob try everything on Alice's tasks. Nothing of Alice's
// may be read, changed or even confirmed to exist.
func TestIsolation(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice, bob := e.as(t, "alice"), e.as(t, "bob")

	a1 := alice.create(t, `{"title":"Alpha secret plan","description":"hidden description","priority":"high","tags":["private","work"],"due_date":"2026-02-03T04:05:06Z"}`)
	a2 := alice.create(t, `{"title":"alpha done","priority":"low","tags":["private"],"due_date":"2026-02-01"}`)
	alice.do(t, http.MethodPatch, alice.tasksPath(idPath(a2.ID)+"/complete"), "").wantStatus(t, http.StatusOK)
	// Alice used idempotency keys for a create and a change; their stored
	// results hold her tasks.
	alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"keyed"}`, "Idempotency-Key", "k-create").wantStatus(t, http.StatusCreated)
	alice.do(t, http.MethodPatch, alice.tasksPath(idPath(a1.ID)), `{"description":"hidden description v2"}`, "Idempotency-Key", "k-patch").wantStatus(t, http.StatusOK)
	b1 := bob.create(t, `{"title":"bob's own"}`)

	aliceIDs := map[int64]bool{}
	before := map[int64]map[string]any{}
	for _, task := range alice.do(t, http.MethodGet, alice.tasksPath(""), "").tasks(t) {
		aliceIDs[task.ID] = true
		before[task.ID] = alice.do(t, http.MethodGet, alice.tasksPath(idPath(task.ID)), "").jsonObject(t)
	}
	aliceEvents := len(events(t, e.db, "alice"))

	// A missing id to compare the answers with: nothing has it.
	missing := b1.ID + 1000
	type answer struct {
		status int
		body   string
	}
	answerFor := func(res response, id int64) answer {
		// The message names the id; anything else would differ.
		return answer{res.status, strings.ReplaceAll(string(res.body), strconv.FormatInt(id, 10), "ID")}
	}
	probes := []struct {
		method, suffix, body string
		headers              []string
	}{
		{http.MethodGet, "", "", nil},
		{http.MethodGet, "", "", []string{"If-None-Match", `"1"`}},
		{http.MethodPut, "", `{"title":"pwned"}`, nil},
		{http.MethodPatch, "", `{"title":"pwned"}`, nil},
		{http.MethodPatch, "", `{"title":"pwned"}`, []string{"If-Match", `"1"`}},
		{http.MethodPatch, "", `{"title":"pwned"}`, []string{"If-Match", `"99"`}},
		{http.MethodPatch, "", `{"description":"hidden description v2"}`, []string{"Idempotency-Key", "k-patch"}},
		{http.MethodDelete, "", "", nil},
		{http.MethodDelete, "", "", []string{"If-Match", `"2"`}},
		{http.MethodPatch, "/complete", "", nil},
		{http.MethodPatch, "/complete", `{"completed":false}`, []string{"If-Match", `"2"`}},
		{http.MethodPost, "/complete", "", nil},
		{http.MethodPost, "/complete", `{"completed":true}`, nil},
	}
	for id := range aliceIDs {
		for _, p := range probes {
			// Through Bob's own path: exactly what a missing task gets.
			got := bob.do(t, p.method, bob.tasksPath(idPath(id)+p.suffix), p.body, p.headers...)
			got.wantError(t, http.StatusNotFound, "not_found")
			want := bob.do(t, p.method, bob.tasksPath(idPath(missing)+p.suffix), p.body, p.headers...)
			if a, b := answerFor(got, id), answerFor(want, missing); !reflect.DeepEqual(a, b) {
				t.Errorf("%s %s on alice's task %d: %+v; a missing task gets %+v", p.method, p.suffix, id, a, b)
			}
			// Through Alice's path with Bob's token: forbidden.
			intruder := &apiClient{env: e, user: "alice", token: bob.token}
			intruder.do(t, p.method, intruder.tasksPath(idPath(id)+p.suffix), p.body, p.headers...).wantError(t, http.StatusForbidden, "forbidden")
		}
	}
	intruder := &apiClient{env: e, user: "alice", token: bob.token}
	intruder.do(t, http.MethodGet, intruder.tasksPath(""), "").wantError(t, http.StatusForbidden, "forbidden")
	intruder.do(t, http.MethodPost, intruder.tasksPath(""), `{"title":"planted"}`).wantError(t, http.StatusForbidden, "forbidden")

	// Lists with every filter aimed at Alice's tasks show Bob only his own.
	aliceCursor := alice.do(t, http.MethodGet, alice.tasksPath("?sort=title&limit=1"), "").header.Get("X-Next-Cursor")
	if aliceCursor == "" {
		t.Fatal("no cursor from alice's list")
	}
	for _, q := range []string{
		"", "q=alpha", "q=SECRET", "q=hidden", "tag=private", "tag=private&tag=work", "priority=high", "priority=low,high",
		"status=completed", "status=pending&q=plan", "due_before=2027-01-01", "due_after=2000-01-01",
		"sort=title&order=desc&limit=500", "sort=due_date", "sort=priority&order=desc", "sort=updated",
		"sort=title&limit=1&cursor=" + url.QueryEscape(aliceCursor),
	} {
		res := bob.do(t, http.MethodGet, bob.tasksPath("?"+q), "")
		res.wantStatus(t, http.StatusOK)
		for _, task := range res.tasks(t) {
			if task.UserID != "bob" || aliceIDs[task.ID] {
				t.Errorf("?%s: bob sees %+v", q, task)
			}
		}
		if strings.Contains(string(res.body), "lpha") || strings.Contains(string(res.body), "hidden") {
			t.Errorf("?%s: body mentions alice's tasks: %s", q, res.body)
		}
	}

	// Alice's idempotency key is not Bob's: he gets a task of his own.
	res := bob.do(t, http.MethodPost, bob.tasksPath(""), `{"title":"keyed"}`, "Idempotency-Key", "k-create")
	res.wantStatus(t, http.StatusCreated)
	if task := res.task(t); task.UserID != "bob" || aliceIDs[task.ID] || res.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("bob with alice's key: %s (replayed %q)", res.body, res.header.Get("Idempotent-Replayed"))
	}

	// The service refuses the same way.
	for id := range aliceIDs {
		_, err := e.svc.Get(t.Context(), "bob", id)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Service.Get(bob, %d) = %v", id, err)
		}
	}
	snapshot, _, err := e.svc.Snapshot(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range snapshot {
		if aliceIDs[task.ID] || task.UserID != "bob" {
			t.Errorf("bob's snapshot holds %+v", task)
		}
	}

	// Alice's tasks are exactly as they were, and nothing was logged for her.
	for id, want := range before {
		got := alice.do(t, http.MethodGet, alice.tasksPath(idPath(id)), "").jsonObject(t)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("alice's task %d changed:\n got %v\nwant %v", id, got, want)
		}
	}
	if n := len(events(t, e.db, "alice")); n != aliceEvents {
		t.Errorf("alice has %d events, had %d", n, aliceEvents)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks WHERE user_id = 'alice'`); n != len(aliceIDs) {
		t.Errorf("alice has %d tasks, had %d", n, len(aliceIDs))
	}
}
