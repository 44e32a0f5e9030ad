package tasks

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync"
	"tasksync/internal/testdb"
)

// recurring returns the fields of a recurring task due at due.
func recurring(title, rule, tz string, due time.Time) Fields {
	f := Fields{Title: ptr(title), DueAt: &due, DueSet: true, Recurrence: ptr(rule), RecurrenceSet: true}
	if tz != "" {
		f.TZ, f.TZSet = ptr(tz), true
	}
	return f
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// seriesTasks returns the tasks of a series, by due time.
func seriesTasks(t *testing.T, db *testdb.DB, user string, series int64) []Task {
	t.Helper()
	rows, err := db.Pool.Query(t.Context(), `SELECT `+columns+` FROM tasks WHERE user_id = $1 AND series_id = $2 ORDER BY due_at, id`, user, series)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		task, err := scanTask(rows)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, task)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// open returns the one task of the series that is not completed.
func openOccurrence(t *testing.T, db *testdb.DB, user string, series int64) (Task, bool) {
	t.Helper()
	var open []Task
	for _, task := range seriesTasks(t, db, user, series) {
		if !task.Completed {
			open = append(open, task)
		}
	}
	if len(open) > 1 {
		t.Fatalf("series %d has %d open occurrences, want at most 1: %v", series, len(open), open)
	}
	if len(open) == 0 {
		return Task{}, false
	}
	return open[0], true
}

// TestCompletingWalksTheSeries completes occurrence after occurrence of each
// rule form through the service and checks the due times the database ends
// up with, the rule each occurrence carries, and where the series ends.
func TestCompletingWalksTheSeries(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	tests := []struct {
		rule, tz, start string
		want            []string // due times of the occurrences after the first
		ends            bool     // nothing after want
		lastRule        string   // the rule of the last occurrence, when it differs
	}{
		{rule: "FREQ=DAILY", start: "2026-03-01T08:30:00Z",
			want: []string{"2026-03-02T08:30:00Z", "2026-03-03T08:30:00Z"}},
		{rule: "FREQ=WEEKLY;BYDAY=MO,WE,FR", start: "2026-12-02T17:00:00Z",
			want: []string{"2026-12-04T17:00:00Z", "2026-12-07T17:00:00Z", "2026-12-09T17:00:00Z"}},
		{rule: "FREQ=MONTHLY;BYMONTHDAY=1", start: "2026-11-01T07:00:00Z",
			want: []string{"2026-12-01T07:00:00Z", "2027-01-01T07:00:00Z", "2027-02-01T07:00:00Z"}},
		{rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", start: "2026-12-04T09:00:00Z",
			want: []string{"2026-12-18T09:00:00Z", "2027-01-01T09:00:00Z"}},
		{rule: "FREQ=DAILY;COUNT=3", start: "2026-05-01T10:00:00Z",
			want: []string{"2026-05-02T10:00:00Z", "2026-05-03T10:00:00Z"}, ends: true, lastRule: "FREQ=DAILY;COUNT=1"},
		{rule: "FREQ=WEEKLY;UNTIL=20260515T235959Z", start: "2026-05-01T10:00:00Z",
			want: []string{"2026-05-08T10:00:00Z", "2026-05-15T10:00:00Z"}, ends: true},
		// 09:00 in New York: 13:00Z in daylight time, 14:00Z after 2026-11-01.
		{rule: "FREQ=WEEKLY;BYDAY=MO", tz: "America/New_York", start: "2026-10-26T13:00:00Z",
			want: []string{"2026-11-02T14:00:00Z", "2026-11-09T14:00:00Z"}},
		// 09:00 in Berlin: 08:00Z in winter, 07:00Z from 2027-03-28.
		{rule: "FREQ=DAILY", tz: "Europe/Berlin", start: "2027-03-27T08:00:00Z",
			want: []string{"2027-03-28T07:00:00Z", "2027-03-29T07:00:00Z"}},
	}
	for i, tc := range tests {
		t.Run(tc.rule+" "+tc.tz, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			user := fmt.Sprintf("walker%d", i)
			f := recurring("walk "+tc.rule, tc.rule, tc.tz, mustTime(t, tc.start))
			f.Description, f.Priority, f.Tags = ptr("every time"), ptr(PriorityHigh), &[]string{"home", "chores"}
			remind := mustTime(t, tc.start).Add(-30 * time.Minute)
			f.RemindAt, f.RemindSet = &remind, true
			first, err := svc.Create(ctx, user, f, MutationOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if first.Task.SeriesID == nil || *first.Task.SeriesID != first.TaskID {
				t.Fatalf("first task's series_id %v, want its own id %d", first.Task.SeriesID, first.TaskID)
			}
			series := first.TaskID
			cur := *first.Task
			for step := 0; ; step++ {
				done := true
				if _, err := svc.SetCompleted(ctx, user, cur.ID, &done, MutationOptions{}); err != nil {
					t.Fatalf("complete step %d: %v", step, err)
				}
				next, ok := openOccurrence(t, db, user, series)
				if step == len(tc.want) {
					if ok && tc.ends {
						t.Fatalf("after the last occurrence: %+v was created, want the series to end", next)
					}
					break
				}
				if !ok {
					t.Fatalf("step %d: no next occurrence, want one due %s", step, tc.want[step])
				}
				if want := mustTime(t, tc.want[step]); next.DueAt == nil || !next.DueAt.Equal(want) {
					t.Fatalf("step %d: next due %v, want %s", step, next.DueAt, tc.want[step])
				}
				if next.Title != cur.Title || next.Description != "every time" || next.Priority != PriorityHigh ||
					!slices.Equal(next.Tags, []string{"home", "chores"}) || !samePtr(next.TZ, cur.TZ) || *next.SeriesID != series {
					t.Fatalf("step %d: next %+v does not keep the fields of %+v", step, next, cur)
				}
				if next.RemindAt == nil || next.DueAt.Sub(*next.RemindAt) != 30*time.Minute {
					t.Fatalf("step %d: remind_at %v, want 30 minutes before %v", step, next.RemindAt, next.DueAt)
				}
				if tc.lastRule != "" && step == len(tc.want)-1 && *next.Recurrence != tc.lastRule {
					t.Fatalf("last occurrence carries %q, want %q", *next.Recurrence, tc.lastRule)
				}
				cur = next
			}
		})
	}
}

// eventActors returns "op task_id actor session" for every event of user.
func eventActors(t *testing.T, db *testdb.DB, user string) []string {
	t.Helper()
	rows, err := db.Pool.Query(t.Context(), `SELECT op, task_id, actor, coalesce(session, '-') FROM task_events WHERE user_id = $1 ORDER BY seq`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var op, actor, session string
		var id int64
		if err := rows.Scan(&op, &id, &actor, &session); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %s %s", op, id, actor, session))
	}
	return out
}

// TestCompletingLogsTheNextOccurrence: every way of completing creates the
// next occurrence as its own created event, by actor "recurrence" with the
// completing change's session; the completing mutation's own result is the
// completed task.
func TestCompletingLogsTheNextOccurrence(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	due := mustTime(t, "2026-12-07T09:00:00Z")
	complete := map[string]func(id int64, opts MutationOptions) (Result, error){
		"SetCompleted": func(id int64, opts MutationOptions) (Result, error) {
			return svc.SetCompleted(ctx, "logger", id, ptr(true), opts)
		},
		"SetCompleted toggle": func(id int64, opts MutationOptions) (Result, error) {
			return svc.SetCompleted(ctx, "logger", id, nil, opts)
		},
		"Update": func(id int64, opts MutationOptions) (Result, error) {
			return svc.Update(ctx, "logger", id, Fields{Completed: ptr(true)}, opts)
		},
		"Replace": func(id int64, opts MutationOptions) (Result, error) {
			f := recurring("replaced", "FREQ=DAILY", "", due)
			f.Completed = ptr(true)
			return svc.Replace(ctx, "logger", id, f, opts)
		},
	}
	for name, do := range complete {
		first, err := svc.Create(ctx, "logger", recurring(name, "FREQ=DAILY", "", due), MutationOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before := len(eventActors(t, db, "logger"))
		key := strings.ReplaceAll(name, " ", "-")
		opts := MutationOptions{Actor: ActorSocket, Session: "sess-" + key, IdempotencyKey: "key-" + key}
		res, err := do(first.TaskID, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Task == nil || res.Task.ID != first.TaskID || !res.Task.Completed {
			t.Fatalf("%s: result %+v, want the completed task %d", name, res.Task, first.TaskID)
		}
		next, ok := openOccurrence(t, db, "logger", first.TaskID)
		if !ok {
			t.Fatalf("%s: no next occurrence", name)
		}
		got := eventActors(t, db, "logger")[before:]
		want := []string{
			fmt.Sprintf("updated %d socket sess-%s", first.TaskID, key),
			fmt.Sprintf("created %d recurrence sess-%s", next.ID, key),
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: events %q, want %q", name, got, want)
		}
		// A retry with the same key is answered from the record and
		// creates nothing more.
		again, err := do(first.TaskID, opts)
		if err != nil || !again.Replayed {
			t.Fatalf("%s: retry: %+v, %v", name, again, err)
		}
		if n := len(seriesTasks(t, db, "logger", first.TaskID)); n != 2 {
			t.Errorf("%s: %d tasks in the series after a retry, want 2", name, n)
		}
	}
}

// TestCompletingAgainCreatesNothing: un-completing keeps the next
// occurrence, completing again creates no second one, and neither does
// completing an older occurrence late.
func TestCompletingAgainCreatesNothing(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	first, err := svc.Create(ctx, "again", recurring("water plants", "FREQ=WEEKLY", "", mustTime(t, "2026-12-07T09:00:00Z")), MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := first.TaskID
	for i, completed := range []bool{true, false, true, false, true} {
		if _, err := svc.SetCompleted(ctx, "again", id, &completed, MutationOptions{}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	list := seriesTasks(t, db, "again", id)
	if len(list) != 2 {
		t.Fatalf("%d tasks in the series, want 2 (the first and one next): %+v", len(list), list)
	}
	second := list[1]
	// The second completed, the first reopened and completed late: one
	// third occurrence, after the second's.
	if _, err := svc.SetCompleted(ctx, "again", second.ID, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetCompleted(ctx, "again", id, ptr(false), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetCompleted(ctx, "again", id, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	list = seriesTasks(t, db, "again", id)
	if len(list) != 3 || !list[2].DueAt.Equal(mustTime(t, "2026-12-21T09:00:00Z")) {
		t.Fatalf("series %+v, want three weekly occurrences", list)
	}
	// Skip the third (the fourth comes), then reopen and complete the
	// first again: its successor's slot is free now, but the series is
	// ahead of it, so nothing comes back.
	if _, err := svc.Delete(ctx, "again", list[2].ID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, completed := range []bool{false, true} {
		if _, err := svc.SetCompleted(ctx, "again", second.ID, &completed, MutationOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Delete(ctx, "again", second.ID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, completed := range []bool{false, true} {
		if _, err := svc.SetCompleted(ctx, "again", id, &completed, MutationOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var dues []string
	for _, task := range seriesTasks(t, db, "again", id) {
		dues = append(dues, task.DueAt.Format(time.DateOnly))
	}
	if want := []string{"2026-12-07", "2026-12-28"}; !slices.Equal(dues, want) {
		t.Fatalf("series due on %v, want %v", dues, want)
	}
}

// TestDeleteOccurrenceOrSeries: deleting an open occurrence skips it (the
// next one is created), deleting a completed one creates nothing, and
// DeleteSeries deletes every task of the series, one event each.
func TestDeleteOccurrenceOrSeries(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	first, err := svc.Create(ctx, "del", recurring("standup", "FREQ=WEEKLY;BYDAY=MO,WE,FR", "Europe/Berlin", mustTime(t, "2026-12-07T08:00:00Z")), MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	series := first.TaskID
	other, err := svc.Create(ctx, "del", Fields{Title: ptr("not in the series")}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Skip Monday: Wednesday comes.
	if _, err := svc.Delete(ctx, "del", series, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	wed, ok := openOccurrence(t, db, "del", series)
	if !ok || !wed.DueAt.Equal(mustTime(t, "2026-12-09T08:00:00Z")) {
		t.Fatalf("after skipping Monday: %+v, want Wednesday 09:00 Berlin", wed)
	}
	// Complete Wednesday (Friday comes), then delete the completed one:
	// nothing new.
	if _, err := svc.SetCompleted(ctx, "del", wed.ID, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, "del", wed.ID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	list := seriesTasks(t, db, "del", series)
	if len(list) != 1 || !list[0].DueAt.Equal(mustTime(t, "2026-12-11T08:00:00Z")) {
		t.Fatalf("series %+v, want only Friday", list)
	}
	fri := list[0]
	if _, err := svc.SetCompleted(ctx, "del", fri.ID, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	// A stale version refuses the whole-series delete and deletes nothing.
	_, err = svc.DeleteSeries(ctx, "del", fri.ID, MutationOptions{IfVersion: 1})
	wantCode(t, err, tasksync.CodeVersionMismatch)
	// Another user cannot delete it.
	_, err = svc.DeleteSeries(ctx, "mallory", fri.ID, MutationOptions{})
	wantCode(t, err, tasksync.CodeNotFound)

	before := len(events(t, db, "del"))
	ids := []int64{}
	for _, task := range seriesTasks(t, db, "del", series) {
		ids = append(ids, task.ID)
	}
	if len(ids) != 2 {
		t.Fatalf("series has %d tasks, want Friday and the Monday after", len(ids))
	}
	res, err := svc.DeleteSeries(ctx, "del", fri.ID, MutationOptions{})
	if err != nil || res.Op != OpDeleted || res.TaskID != fri.ID {
		t.Fatalf("DeleteSeries: %+v, %v", res, err)
	}
	if n := len(seriesTasks(t, db, "del", series)); n != 0 {
		t.Fatalf("%d tasks of the series left", n)
	}
	var deleted []int64
	for _, e := range events(t, db, "del")[before:] {
		if e.Op != OpDeleted {
			t.Errorf("event %+v, want only deletes", e)
		}
		deleted = append(deleted, e.TaskID)
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, ids) {
		t.Errorf("deleted events for %v, want %v", deleted, ids)
	}
	if _, err := svc.Get(ctx, "del", other.TaskID); err != nil {
		t.Errorf("a task outside the series: %v", err)
	}
	// A task without a series: "all" deletes just it.
	if _, err := svc.DeleteSeries(ctx, "del", other.TaskID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, "del", other.TaskID); tasksync.ErrorCode(err) != tasksync.CodeNotFound {
		t.Errorf("after DeleteSeries of a plain task: %v", err)
	}
}

// TestSeriesKeepsOneOccurrencePerDueTime: moving an occurrence onto the due
// time of another of its series is refused before anything is written, so
// that it cannot abort the batch it shares with others.
func TestSeriesKeepsOneOccurrencePerDueTime(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1})
	ctx := t.Context()
	due := mustTime(t, "2026-12-07T09:00:00Z")
	first, err := svc.Create(ctx, "slot", recurring("pay", "FREQ=DAILY", "", due), MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetCompleted(ctx, "slot", first.TaskID, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	next, _ := openOccurrence(t, db, "slot", first.TaskID)
	_, err = svc.Update(ctx, "slot", next.ID, Fields{DueAt: &due, DueSet: true}, MutationOptions{})
	wantCode(t, err, tasksync.CodeConflict)
	// Many at once, in batches: the refusals do not cost anyone a rerun.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = svc.Update(ctx, "slot", next.ID, Fields{DueAt: &due, DueSet: true}, MutationOptions{})
				if tasksync.ErrorCode(err) == tasksync.CodeConflict {
					err = nil
				}
			} else {
				_, err = svc.Create(ctx, "slot", Fields{Title: ptr(fmt.Sprint(i))}, MutationOptions{})
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if r := svc.BatchReruns(); r != 0 {
		t.Errorf("%d reruns: a refusal aborted a batch", r)
	}
}

// TestConcurrentCompletionCreatesOneNext completes the same occurrence from
// many goroutines on two services (two pools: two instances) at once, over
// many rounds, and from batches of one service, and counts next occurrences.
func TestConcurrentCompletionCreatesOneNext(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	a := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1})
	pool2, err := pgxpool.New(t.Context(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool2.Close)
	b := NewService(pool2)
	ctx := t.Context()
	const rounds, each = 20, 4
	first, err := a.Create(ctx, "race", recurring("race", "FREQ=DAILY", "America/New_York", mustTime(t, "2026-10-25T13:00:00Z")), MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur := first.TaskID
	for round := range rounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 2 * each {
			svc := a
			if i%2 == 1 {
				svc = b
			}
			wg.Go(func() {
				<-start
				var err error
				if i%4 < 2 {
					_, err = svc.SetCompleted(ctx, "race", cur, ptr(true), MutationOptions{Actor: ActorSocket, Session: fmt.Sprint(i)})
				} else {
					_, err = svc.Update(ctx, "race", cur, Fields{Completed: ptr(true)}, MutationOptions{Actor: ActorREST})
				}
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		close(start)
		wg.Wait()
		list := seriesTasks(t, db, "race", first.TaskID)
		if len(list) != round+2 {
			t.Fatalf("round %d: %d tasks in the series, want %d", round, len(list), round+2)
		}
		next, ok := openOccurrence(t, db, "race", first.TaskID)
		if !ok {
			t.Fatalf("round %d: no next occurrence", round)
		}
		cur = next.ID
	}
	if n := countRows(t, db, `SELECT count(*) FROM task_events WHERE user_id = 'race' AND actor = 'recurrence'`); n != rounds {
		t.Errorf("%d events by recurrence, want %d", n, rounds)
	}
}

// TestActorIsGivenBackInABatch: the next occurrence is logged by
// "recurrence", and the mutations after it in the same transaction by
// their own actor (each names its own: the recurrence setting must not
// leak into the next one).
func TestActorIsGivenBackInABatch(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1, MaxBatch: 64})
	ctx := t.Context()
	const n = 12
	var recurringIDs, plainIDs []int64
	for i := range n {
		r, err := svc.Create(ctx, "batch", recurring(fmt.Sprint("r", i), "FREQ=DAILY", "", mustTime(t, "2026-12-07T09:00:00Z")), MutationOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.Create(ctx, "batch", Fields{Title: ptr(fmt.Sprint("p", i))}, MutationOptions{})
		if err != nil {
			t.Fatal(err)
		}
		recurringIDs, plainIDs = append(recurringIDs, r.TaskID), append(plainIDs, p.TaskID)
	}
	for attempt := 0; svc.batches.batched.Load() == 0; attempt++ {
		if attempt == 20 {
			t.Fatal("no batch formed")
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				if _, err := svc.SetCompleted(ctx, "batch", recurringIDs[i], nil, MutationOptions{Actor: ActorSocket, Session: "s"}); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				<-start
				if _, err := svc.Update(ctx, "batch", plainIDs[i], Fields{Description: ptr(fmt.Sprint(attempt))}, MutationOptions{Actor: ActorREST}); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	for _, line := range eventActors(t, db, "batch") {
		var op, actor, session string
		var id int64
		fmt.Sscanf(line, "%s %d %s %s", &op, &id, &actor, &session)
		switch {
		case op == "created" && !slices.Contains(recurringIDs, id) && !slices.Contains(plainIDs, id):
			if actor != ActorRecurrence || session != "s" {
				t.Errorf("next occurrence logged as %q", line)
			}
		case op == "updated" && slices.Contains(plainIDs, id):
			if actor != ActorREST || session != "-" {
				t.Errorf("plain update logged as %q", line)
			}
		case op == "updated" && slices.Contains(recurringIDs, id):
			if actor != ActorSocket || session != "s" {
				t.Errorf("completion logged as %q", line)
			}
		}
	}
}

// TestUndoWithdrawsTheSpawnedOccurrence: restoring an occurrence that was
// completed, or deleted as "this one", removes the next occurrence that the
// completion or delete made, unless it was touched since; without this an
// undo left two open occurrences of one series.
func TestUndoWithdrawsTheSpawnedOccurrence(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := t.Context()
	const user = "undo"
	first, err := svc.Create(ctx, user, recurring("standup", "FREQ=WEEKLY;BYDAY=MO,WE", "Europe/Berlin", mustTime(t, "2026-12-07T08:00:00Z")), MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	series := first.TaskID
	onlyOpen := func(step string, id int64) {
		t.Helper()
		list := seriesTasks(t, db, user, series)
		if len(list) != 1 || list[0].ID != id || list[0].Completed {
			t.Fatalf("%s: series %+v, want only task %d, open", step, list, id)
		}
	}
	actorOfLastDelete := func() (int64, string) {
		var id int64
		var actor string
		if err := db.Pool.QueryRow(ctx, `SELECT task_id, actor FROM task_events WHERE user_id = $1 AND op = 'deleted' ORDER BY seq DESC LIMIT 1`, user).Scan(&id, &actor); err != nil {
			t.Fatal(err)
		}
		return id, actor
	}

	// Complete Monday (Wednesday comes), undo: Wednesday goes, logged as the recurrence's doing.
	if _, err := svc.SetCompleted(ctx, user, series, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	wed, ok := openOccurrence(t, db, user, series)
	if !ok {
		t.Fatal("completing made no next occurrence")
	}
	if _, err := svc.Restore(ctx, user, series, 1, MutationOptions{Actor: ActorREST}); err != nil {
		t.Fatal(err)
	}
	onlyOpen("undo complete", series)
	if id, actor := actorOfLastDelete(); id != wed.ID || actor != ActorRecurrence {
		t.Errorf("last delete: task %d by %q, want %d by %q", id, actor, wed.ID, ActorRecurrence)
	}

	// Delete Monday as "this one" (Wednesday comes again), undo: Monday back, Wednesday gone.
	if _, err := svc.Delete(ctx, user, series, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := openOccurrence(t, db, user, series); !ok {
		t.Fatal("deleting made no next occurrence")
	}
	if _, err := svc.Restore(ctx, user, series, 0, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	onlyOpen("undo delete", series)

	// Complete Monday, edit Wednesday, undo the completion: Wednesday is the user's now and stays.
	if _, err := svc.SetCompleted(ctx, user, series, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	wed, _ = openOccurrence(t, db, user, series)
	if _, err := svc.Update(ctx, user, wed.ID, Fields{Title: ptr("standup (long)")}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	mon, err := svc.Get(ctx, user, series)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Restore(ctx, user, series, mon.Version-1, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if list := seriesTasks(t, db, user, series); len(list) != 2 || list[1].ID != wed.ID {
		t.Fatalf("after undoing with an edited next occurrence: %+v, want Monday and the edited Wednesday", list)
	}
}
