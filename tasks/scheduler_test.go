package tasks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync/internal/testdb"
)

// recordingScheduler records the calls, and writes each as a row in the
// caller's transaction, so that the test sees which of them committed.
type recordingScheduler struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingScheduler) ScheduleReminder(ctx context.Context, tx pgx.Tx, userID string, taskID int64, at time.Time) error {
	return r.record(ctx, tx, fmt.Sprintf("schedule %d %s", taskID, at.UTC().Format(TimeLayout)))
}

func (r *recordingScheduler) CancelReminders(ctx context.Context, tx pgx.Tx, userID string, taskID int64) error {
	return r.record(ctx, tx, fmt.Sprintf("cancel %d", taskID))
}

func (r *recordingScheduler) record(ctx context.Context, tx pgx.Tx, call string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO scheduler_calls (call) VALUES ($1)`, call); err != nil {
		return err
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
	return nil
}

func (r *recordingScheduler) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// Every mutation keeps the reminder job in step, in its own transaction:
// a job when remind_at is set, none for edits that keep it, cancel and
// reschedule when it moves, cancel on complete and delete, a new job on
// un-complete; concurrent creates (group commit) each get theirs.
func TestSchedulerFollowsReminders(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE scheduler_calls (call text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	sch := &recordingScheduler{}
	svc := NewService(db.Pool)
	svc.UseScheduler(sch)
	const user = "sched"
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	later := at.Add(10 * time.Minute)
	ts := func(t time.Time) string { return t.Format(TimeLayout) }
	expect := func(step string, want ...string) {
		t.Helper()
		got := sch.take()
		if len(want) == 1 && strings.Contains(want[0], "|") {
			want = strings.Split(want[0], "|") // in any order
			slices.Sort(got)
			slices.Sort(want)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: scheduler calls %q, want %q", step, got, want)
		}
	}

	plain, err := svc.Create(ctx, user, Fields{Title: ptr("no reminder")}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect("create without remind_at")
	res, err := svc.Create(ctx, user, Fields{Title: ptr("call"), RemindAt: &at, RemindSet: true}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.TaskID
	expect("create", fmt.Sprintf("schedule %d %s", id, ts(at)))
	if _, err := svc.Update(ctx, user, id, Fields{Title: ptr("call mum")}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("edit that keeps remind_at")
	if _, err := svc.Update(ctx, user, id, Fields{RemindAt: &later, RemindSet: true}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("snooze", fmt.Sprintf("cancel %d", id), fmt.Sprintf("schedule %d %s", id, ts(later)))
	if _, err := svc.SetCompleted(ctx, user, id, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("complete", fmt.Sprintf("cancel %d", id))
	if _, err := svc.SetCompleted(ctx, user, id, ptr(false), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("un-complete", fmt.Sprintf("schedule %d %s", id, ts(later)))
	if _, err := svc.Update(ctx, user, plain.TaskID, Fields{RemindAt: &at, RemindSet: true}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("remind_at added", fmt.Sprintf("schedule %d %s", plain.TaskID, ts(at)))
	if _, err := svc.Update(ctx, user, plain.TaskID, Fields{RemindAt: nil, RemindSet: true}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("remind_at cleared", fmt.Sprintf("cancel %d", plain.TaskID))
	if _, err := svc.Delete(ctx, user, id, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete", fmt.Sprintf("cancel %d", id))
	// Undo of the delete: the task comes back with its id, and its reminder
	// with it; returning it to its first version (no reminder) cancels it.
	if _, err := svc.Restore(ctx, user, id, 0, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("restore a deleted task", fmt.Sprintf("schedule %d %s", id, ts(later)))
	if _, err := svc.Restore(ctx, user, plain.TaskID, 1, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("restore a version without remind_at")
	if _, err := svc.Restore(ctx, user, plain.TaskID, 2, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("restore a version with remind_at", fmt.Sprintf("schedule %d %s", plain.TaskID, ts(at)))
	if _, err := svc.Delete(ctx, user, id, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, user, plain.TaskID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete both again", fmt.Sprintf("cancel %d", id), fmt.Sprintf("cancel %d", plain.TaskID))

	// A recurring task: created with its reminder; completing it makes
	// the next occurrence, whose reminder (same distance to its due time)
	// is scheduled in the same transaction; deleting the series cancels
	// the open one's.
	due := at.Add(time.Hour)
	series, err := svc.Create(ctx, user, Fields{Title: ptr("standup"), DueAt: &due, DueSet: true, RemindAt: &at, RemindSet: true,
		Recurrence: ptr("FREQ=DAILY"), RecurrenceSet: true}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := series.TaskID
	expect("create a recurring task", fmt.Sprintf("schedule %d %s", first, ts(at)))
	if _, err := svc.SetCompleted(ctx, user, first, ptr(true), MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	var nextID int64
	var nextAt time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT id, remind_at FROM tasks WHERE series_id = $1 AND id <> $1`, first).Scan(&nextID, &nextAt); err != nil {
		t.Fatal(err)
	}
	if d := nextAt.Sub(at.Add(24 * time.Hour)); d < -time.Second || d > time.Second {
		t.Fatalf("next occurrence reminds at %s, want a day after %s", nextAt, at)
	}
	expect("complete an occurrence", fmt.Sprintf("cancel %d", first)+"|"+fmt.Sprintf("schedule %d %s", nextID, ts(nextAt.UTC())))
	if _, err := svc.DeleteSeries(ctx, user, nextID, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete the series", fmt.Sprintf("cancel %d", nextID))

	// Concurrent creates with reminders, group-committed: each in a
	// transaction with its job (never autocommit, never the multi-row
	// INSERT that has no place for it).
	var wg sync.WaitGroup
	const n = 20
	for i := range n {
		wg.Go(func() {
			if _, err := svc.Create(ctx, user, Fields{Title: ptr(fmt.Sprintf("c%d", i)), RemindAt: &at, RemindSet: true}, MutationOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(sch.take()); got != n {
		t.Fatalf("%d scheduler calls for %d creates", got, n)
	}
	var rows int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM scheduler_calls`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := 16 + n; rows != want {
		t.Fatalf("%d scheduler calls committed, want %d", rows, want)
	}
}
