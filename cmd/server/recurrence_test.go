package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// completeREST calls POST .../complete on inst, for a goroutine other than
// the test's own (it reports instead of failing).
func completeREST(inst *instance, token, user string, id int64) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/%s/tasks/%d/complete", inst.URL, user, id), bytes.NewReader([]byte(`{"completed":true}`)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	var task map[string]any
	if err := json.Unmarshal(b, &task); err != nil {
		return res.StatusCode, nil, fmt.Errorf("decode %s: %w", b, err)
	}
	return res.StatusCode, task, nil
}

// TestRecurringCompletionOnTwoInstances completes the same occurrence on
// two instances at the same moment (REST on A, a socket on B), round after
// round across a daylight-saving change, and checks that each round makes
// exactly one next occurrence, due at 09:00 New York time, and that every
// session sees it once, as its own task.created event after the update.
func TestRecurringCompletionOnTwoInstances(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	const user = "rita"
	onA := dial(t, a.WS, user)
	onB := dial(t, b.WS, user)
	token := tok(t, user, time.Hour)

	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 10, 12, 9, 0, 0, 0, ny) // a Monday; New York leaves DST on 2026-11-01
	var created map[string]any
	if code := a.api(t, user, "POST", "/api/rita/tasks", map[string]any{
		"title": "Team sync", "due_at": due.UTC().Format(time.RFC3339), "remind_at": due.Add(-15 * time.Minute).UTC().Format(time.RFC3339),
		"recurrence": "FREQ=WEEKLY;BYDAY=MO", "tz": "America/New_York", "tags": []string{"work"},
	}, &created); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	id := int64(created["id"].(float64))
	if created["series_id"] != float64(id) {
		t.Fatalf("series_id %v, want the task's own id %d", created["series_id"], id)
	}
	seq := int64(1)
	for _, c := range []*wsClient{onA, onB} {
		if ev := c.next("task.created", "task.updated", "task.deleted", "reply", "error"); ev.typ() != "task.created" || ev.seq() != seq {
			t.Fatalf("first frame %v, want the create", ev)
		}
	}

	const rounds = 8
	for round := range rounds {
		type restResult struct {
			code int
			task map[string]any
			err  error
		}
		start := make(chan struct{})
		rest := make(chan restResult, 1)
		go func() {
			<-start
			code, task, err := completeREST(a, token, user, id)
			rest <- restResult{code, task, err}
		}()
		reqID := fmt.Sprintf("complete-%d", round)
		msg, _ := json.Marshal(map[string]any{"type": "task.complete", "id": reqID, "task_id": id, "completed": true})
		close(start)
		onB.sendRaw(msg)

		r := <-rest
		if r.err != nil || r.code != http.StatusOK || r.task["completed"] != true || r.task["id"] != float64(id) {
			t.Fatalf("round %d: REST complete: %d %v %v", round, r.code, r.task, r.err)
		}
		// Frames in arrival order: A sees the update, then the new
		// occurrence; B sees the same two events and its reply, in
		// some place among them.
		due = due.AddDate(0, 0, 7)
		var next map[string]any
		for _, c := range []*wsClient{onA, onB} {
			var events []frame
			replied := c != onB
			for len(events) < 2 || !replied {
				f := c.next()
				switch f.typ() {
				case "reply":
					if f["id"] != reqID || f["re"] != "task.complete" || f.task()["id"] != float64(id) || f.task()["completed"] != true {
						t.Fatalf("round %d: reply %v", round, f)
					}
					replied = true
				case "task.created", "task.updated", "task.deleted":
					events = append(events, f)
				case "presence": // the other socket's join, whenever it comes
				default:
					t.Fatalf("round %d: unexpected frame %v", round, f)
				}
			}
			if events[0].typ() != "task.updated" || events[0].task()["id"] != float64(id) || events[0].task()["completed"] != true ||
				events[0].seq() != seq+1 {
				t.Fatalf("round %d: first event %v, want task %d completed at seq %d", round, events[0], id, seq+1)
			}
			ev := events[1]
			if ev.typ() != "task.created" || ev.seq() != seq+2 {
				t.Fatalf("round %d: second event %v, want the next occurrence at seq %d", round, ev, seq+2)
			}
			if next == nil {
				next = ev.task()
			} else if ev.task()["id"] != next["id"] {
				t.Fatalf("round %d: sessions saw different next occurrences: %v and %v", round, next, ev.task())
			}
			// Nothing more: the second completion changed nothing and
			// created nothing.
			c.quiet()
		}
		wantDue := due.UTC().Format("2006-01-02T15:04:05.000000Z")
		wantRemind := due.Add(-15 * time.Minute).UTC().Format("2006-01-02T15:04:05.000000Z")
		if next["due_at"] != wantDue || next["remind_at"] != wantRemind || next["title"] != "Team sync" ||
			next["series_id"] != float64(created["id"].(float64)) || next["completed"] != false || next["tz"] != "America/New_York" {
			t.Fatalf("round %d: next occurrence %v, want due %s (09:00 New York), reminder %s", round, next, wantDue, wantRemind)
		}
		id = int64(next["id"].(float64))
		seq += 2
	}
	var n, distinct int
	if err := env.DB.Pool.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT due_at) FROM tasks WHERE user_id = $1 AND series_id = $2`,
		user, created["id"]).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != rounds+1 || distinct != n {
		t.Fatalf("%d tasks (%d due times) in the series, want %d", n, distinct, rounds+1)
	}
}

// TestDeleteSeriesOverSocketAndREST: "series":"all" on a socket and
// ?series=all on REST delete every task of the series, one task.deleted
// event each; a bad value is invalid.
func TestDeleteSeriesOverSocketAndREST(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	const user = "sam"
	c := dial(t, a.WS, user)
	makeSeries := func() (first, second int64) {
		t.Helper()
		var task map[string]any
		if code := a.api(t, user, "POST", "/api/sam/tasks", map[string]any{
			"title": "Gym", "due_at": "2026-12-07T18:00:00Z", "recurrence": "FREQ=WEEKLY;BYDAY=MO,TH",
		}, &task); code != http.StatusCreated {
			t.Fatalf("create: %d %v", code, task)
		}
		first = int64(task["id"].(float64))
		if code := a.api(t, user, "POST", fmt.Sprintf("/api/sam/tasks/%d/complete", first), map[string]any{"completed": true}, &task); code != http.StatusOK {
			t.Fatalf("complete: %d", code)
		}
		evs := c.events(3)
		if evs[2].typ() != "task.created" {
			t.Fatalf("events %v", evs)
		}
		return first, int64(evs[2].task()["id"].(float64))
	}

	first, second := makeSeries()
	bad := c.request(map[string]any{"type": "task.delete", "task_id": first, "series": "both"})
	if bad.typ() != "error" || bad["code"] != "invalid" {
		t.Fatalf("bad series: %v", bad)
	}
	reply := c.request(map[string]any{"type": "task.delete", "task_id": second, "series": "all"})
	if reply.typ() != "reply" || reply["op"] != "deleted" || reply["task_id"] != float64(second) {
		t.Fatalf("delete series: %v", reply)
	}
	gone := map[float64]bool{}
	for _, ev := range c.events(2) {
		if ev.typ() != "task.deleted" {
			t.Fatalf("event %v, want deletes", ev)
		}
		gone[ev["task_id"].(float64)] = true
	}
	if !gone[float64(first)] || !gone[float64(second)] {
		t.Fatalf("deleted %v, want %d and %d", gone, first, second)
	}
	c.quiet()

	first, second = makeSeries()
	if code := a.api(t, user, "DELETE", fmt.Sprintf("/api/sam/tasks/%d?series=some", first), nil, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("DELETE ?series=some: %d, want 422", code)
	}
	if code := a.api(t, user, "DELETE", fmt.Sprintf("/api/sam/tasks/%d?series=all", first), nil, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE ?series=all: %d, want 204", code)
	}
	gone = map[float64]bool{}
	for _, ev := range c.events(2) {
		gone[ev["task_id"].(float64)] = ev.typ() == "task.deleted"
	}
	if !gone[float64(first)] || !gone[float64(second)] {
		t.Fatalf("deleted %v, want %d and %d", gone, first, second)
	}
	c.quiet()
}
