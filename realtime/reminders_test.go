package realtime

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"tasksync/internal/testdb"
	"tasksync/tasks"
)

// fakeReminders is the reminders table in memory.
type fakeReminders struct {
	mu        sync.Mutex
	delivered map[int64]bool // id -> delivered; every id belongs to the one user
	user      string
	claims    int
}

func (f *fakeReminders) reminder(id int64) Reminder {
	return Reminder{ID: id, UserID: f.user, RemindAt: time.Unix(1700000000, 0), Task: fakeTask(f.user, id, "task")}
}

func (f *fakeReminders) Read(_ context.Context, user string, ids []int64) ([]Reminder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Reminder
	for _, id := range slices.Sorted(slices.Values(ids)) {
		if _, ok := f.delivered[id]; ok && user == f.user {
			out = append(out, f.reminder(id))
		}
	}
	return out, nil
}

func (f *fakeReminders) ClaimPending(_ context.Context, user string) ([]Reminder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	var out []Reminder
	for id, done := range f.delivered {
		if !done && user == f.user {
			f.delivered[id] = true
			out = append(out, f.reminder(id))
		}
	}
	slices.SortFunc(out, func(a, b Reminder) int { return int(a.ID - b.ID) })
	return out, nil
}

func (f *fakeReminders) MarkDelivered(_ context.Context, _ string, ids []int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.delivered[id] = true
	}
	return nil
}

func (f *fakeReminders) fire(id int64) {
	f.mu.Lock()
	f.delivered[id] = false
	f.mu.Unlock()
}

// A reminder that fires while sessions connect reaches it both ways (the
// NOTIFY, the claim on connect, the listener's backlog claim): each session
// gets it once, after hello.
func TestReminderReachesEachSessionOnce(t *testing.T) {
	t.Parallel()
	const user = "alice"
	fake := &fakeReminders{delivered: map[int64]bool{}, user: user}
	r := newRigWith(t, Config{}, func(h *Hub) { h.reminders = fake })
	handler := r.hub.ReminderHandler()
	notify := func(id int64) {
		if err := handler.HandleNotification(context.Background(), &pgconn.Notification{Channel: ReminderChannel, Payload: itoa(id) + ":" + user}, nil); err != nil {
			t.Fatal(err)
		}
	}
	fake.fire(1) // fired before anyone connected: pending
	var conns []*fakeConn
	for i := range 6 {
		conns = append(conns, r.connect(user, nil))
		notify(1) // the live path races with the connects' claims
		if i == 2 {
			if err := handler.HandleBacklog(context.Background(), ReminderChannel, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Barriers: reminder 2 fires once everything above is queued, and 3
	// once 2 reached every session; whatever the rounds before 3 sent
	// comes before 3.
	fake.fire(2)
	notify(2)
	seen := make([]map[string]int, len(conns))
	for i, c := range conns {
		if f := c.must(t); typ(f) != TypeHello {
			t.Fatalf("socket %d: first frame %v, want hello", i, f)
		}
		seen[i] = map[string]int{}
		for seen[i]["2"] == 0 {
			readReminder(t, c, seen[i])
		}
	}
	fake.fire(3)
	notify(3)
	for i, c := range conns {
		for seen[i]["3"] == 0 {
			readReminder(t, c, seen[i])
		}
		if seen[i]["1"] != 1 || seen[i]["2"] != 1 || seen[i]["3"] != 1 {
			t.Fatalf("socket %d got reminders %v, want 1, 2 and 3 once each", i, seen[i])
		}
	}
}

func readReminder(t *testing.T, c *fakeConn, seen map[string]int) {
	t.Helper()
	f := c.must(t)
	if typ(f) != TypeReminder {
		t.Fatalf("frame %v, want a reminder", f)
	}
	id, _ := f["reminder_id"].(string)
	seen[id]++
}

func itoa(n int64) string { return string(encode(n)) }

// The reminders table: concurrent claims (two sockets connecting on two
// instances) share the pending reminders out, never both getting one;
// reads are scoped by user; a reminder whose task is gone is not sent.
func TestReminderLogClaimsOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO tasks (user_id, title) SELECT 'u1', 't' || i FROM generate_series(1, 50) i`)
	exec(`INSERT INTO tasks (user_id, title) VALUES ('u2', 'other')`)
	exec(`INSERT INTO reminders (user_id, task_id, remind_at) SELECT user_id, id, now() FROM tasks`)
	log := NewReminderLog(db.Pool, tasks.NewService(db.Pool))

	if rs, err := log.Read(ctx, "u2", []int64{1, 2, 51}); err != nil || len(rs) != 1 || rs[0].Task.Title != "other" {
		t.Fatalf("u2 reads reminders 1, 2, 51: %v, %v; want only its own (51)", rs, err)
	}
	var wg sync.WaitGroup
	got := make([][]Reminder, 4)
	for i := range got {
		wg.Go(func() {
			rs, err := log.ClaimPending(ctx, "u1")
			if err != nil {
				t.Error(err)
			}
			got[i] = rs
		})
	}
	wg.Wait()
	seen := map[int64]int{}
	for _, rs := range got {
		for i, r := range rs {
			if r.UserID != "u1" || r.Task.UserID != "u1" || i > 0 && r.ID < rs[i-1].ID {
				t.Fatalf("claimed %+v (not u1's, or out of order)", r)
			}
			seen[r.ID]++
		}
	}
	if len(seen) != 50 {
		t.Fatalf("%d of u1's 50 reminders claimed", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("reminder %d claimed %d times", id, n)
		}
	}
	if rs, err := log.ClaimPending(ctx, "u1"); err != nil || len(rs) != 0 {
		t.Fatalf("claimed again: %v, %v", rs, err)
	}
	// u2's is still pending; its task deleted, it goes with it.
	exec(`DELETE FROM tasks WHERE user_id = 'u2'`)
	if rs, err := log.ClaimPending(ctx, "u2"); err != nil || len(rs) != 0 {
		t.Fatalf("claimed a reminder of a deleted task: %v, %v", rs, err)
	}
}
