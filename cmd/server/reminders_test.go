package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"tasksync/realtime"
	"tasksync/reminders"
	"tasksync/tasks"
)

// Reminders fire up to River's scheduler interval (5 s) after their time,
// plus a poll: frames are waited for with this deadline, never a sleep.
const reminderWait = 30 * time.Second

func TestReminderChannelsAgree(t *testing.T) {
	if realtime.ReminderChannel != reminders.NotifyChannel {
		t.Fatalf("the job notifies %q but the listener listens on %q", reminders.NotifyChannel, realtime.ReminderChannel)
	}
}

// nextReminder returns the next reminder frame, failing on any other frame
// type but the harmless ones (presence, pong, change events) or after
// reminderWait.
func (c *wsClient) nextReminder() frame {
	c.t.Helper()
	deadline := time.After(reminderWait)
	for {
		select {
		case f := <-c.frames:
			switch f.typ() {
			case "reminder":
				return f
			case "presence", "pong", "task.created", "task.updated", "task.deleted", "synced", "reply":
				continue
			default:
				c.t.Fatalf("unexpected frame while waiting for a reminder: %v", f)
			}
		case <-c.closed:
			c.t.Fatalf("socket closed while waiting for a reminder: %v", c.closeErr())
		case <-deadline:
			c.t.Fatalf("no reminder within %s", reminderWait)
		}
	}
}

// noReminder asserts that no reminder frame arrives before a ping round
// trip (frames reach a socket in order: one queued before the pong shows
// first).
func (c *wsClient) noReminder() {
	c.t.Helper()
	id := fmt.Sprintf("barrier-%d", time.Now().UnixNano())
	c.send(map[string]any{"type": "ping", "id": id})
	for {
		select {
		case f := <-c.frames:
			switch {
			case f.typ() == "reminder":
				c.t.Fatalf("unexpected reminder %v", f)
			case f.typ() == "pong" && f["id"] == id:
				return
			}
		case <-time.After(10 * time.Second):
			c.t.Fatal("no pong within 10s")
		}
	}
}

func stamp(at time.Time) string { return at.UTC().Format(tasks.TimeLayout) }

// createWithReminder creates a task for user over REST with remind_at at.
func createWithReminder(t *testing.T, i *instance, user, title string, at time.Time) map[string]any {
	t.Helper()
	var task map[string]any
	if code := i.api(t, user, http.MethodPost, "/api/"+user+"/tasks", map[string]any{"title": title, "remind_at": stamp(at)}, &task); code != http.StatusCreated {
		t.Fatalf("create %q: HTTP %d %v", title, code, task)
	}
	if task["remind_at"] != stamp(at) {
		t.Fatalf("created task has remind_at %v, want %s", task["remind_at"], stamp(at))
	}
	return task
}

func taskID(task map[string]any) int64 { n, _ := task["id"].(float64); return int64(n) }

func (e *testEnv) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.DB.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// A reminder 2 s ahead reaches each of 4 sockets on 2 instances exactly
// once, with the task, and is recorded as fired and delivered.
func TestReminderReachesEverySessionOnce(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	user := "rem-every"
	socks := []*wsClient{dial(t, a.WS, user), dial(t, a.WS, user), dial(t, b.WS, user), dial(t, b.WS, user)}
	other := dial(t, b.WS, "rem-someone-else")

	at := time.Now().Add(2 * time.Second)
	task := createWithReminder(t, a, user, "stretch", at)

	var id any
	for i, c := range socks {
		f := c.nextReminder()
		if f["pending"] != false || f["remind_at"] != stamp(at) || f.task()["id"] != task["id"] || f.task()["title"] != "stretch" {
			t.Fatalf("socket %d: reminder %v", i, f)
		}
		if i == 0 {
			id = f["reminder_id"]
		} else if f["reminder_id"] != id {
			t.Fatalf("socket %d: reminder id %v, socket 0 had %v", i, f["reminder_id"], id)
		}
	}
	// Recorded once, fired not before its time.
	var firedAt time.Time
	if err := env.DB.Pool.QueryRow(context.Background(), `
		SELECT fired_at FROM reminders WHERE task_id = $1 AND user_id = $2`, taskID(task), user).Scan(&firedAt); err != nil {
		t.Fatalf("the reminder is not recorded once: %v", err)
	}
	if firedAt.Before(at) {
		t.Fatalf("fired_at %s, before remind_at %s", firedAt, at)
	}
	// Marked delivered: an instance marks it after queueing the frame on
	// its sessions (realtime.deliverReminders), so a socket can read the
	// frame before the mark commits.
	eventually(t, "the reminder is marked delivered", func() bool {
		return env.count(t, `SELECT count(*) FROM reminders WHERE task_id = $1 AND delivered_at IS NOT NULL`, taskID(task)) == 1
	})
	if n := env.count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder' AND state = 'completed'`); n != 1 {
		t.Fatalf("%d completed reminder jobs, want 1", n)
	}
	// Exactly once: nothing more on any socket, nothing for another user.
	for _, c := range socks {
		c.noReminder()
	}
	other.noReminder()
}

// Moved, deleted and completed tasks do not fire at the old time; a snooze
// (an ordinary task.update of remind_at over the socket, as the board
// sends it) reschedules, also after the reminder fired; a plain-SQL write
// that bypasses the service is caught by the job's own check.
func TestReminderMovedDeletedCompletedDoNotFire(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	user := "rem-moves"
	c := dial(t, a.WS, user)
	ctx := context.Background()

	soon := time.Now().Add(2 * time.Second)
	moved := createWithReminder(t, a, user, "moved", soon)
	deleted := createWithReminder(t, b, user, "deleted", soon)
	completed := createWithReminder(t, a, user, "completed", soon)
	sqlMoved := createWithReminder(t, b, user, "moved by sql", soon)
	sqlDone := createWithReminder(t, a, user, "completed by sql", soon)

	// Snooze over the socket: task.update remind_at.
	later := time.Now().Add(4 * time.Second)
	if r := c.request(map[string]any{"type": "task.update", "task_id": taskID(moved), "task": map[string]any{"remind_at": stamp(later)}}); r.typ() != "reply" {
		t.Fatalf("snooze: %v", r)
	}
	if code := b.api(t, user, http.MethodDelete, fmt.Sprintf("/api/%s/tasks/%d", user, taskID(deleted)), nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: HTTP %d", code)
	}
	if r := c.request(map[string]any{"type": "task.complete", "task_id": taskID(completed), "completed": true}); r.typ() != "reply" {
		t.Fatalf("complete: %v", r)
	}
	// The service cancelled the old jobs in the same transactions.
	if n := env.count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder' AND state = 'cancelled'`); n != 3 {
		t.Fatalf("%d cancelled reminder jobs, want 3 (moved, deleted, completed)", n)
	}
	// Plain SQL knows nothing of jobs: their jobs stay, and must decline.
	if _, err := env.DB.Pool.Exec(ctx, `UPDATE tasks SET remind_at = now() + interval '1 hour' WHERE id = $1`, taskID(sqlMoved)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.DB.Pool.Exec(ctx, `UPDATE tasks SET completed = true WHERE id = $1`, taskID(sqlDone)); err != nil {
		t.Fatal(err)
	}

	// The moved task fires once, at its new time.
	f := c.nextReminder()
	if f.task()["id"] != moved["id"] || f["remind_at"] != stamp(later) {
		t.Fatalf("first reminder %v, want the moved task at %s", f, stamp(later))
	}
	if time.Now().Before(later) {
		t.Fatalf("the moved task fired at %s, before its new time %s", time.Now(), later)
	}
	// The SQL-written tasks' jobs, due at the old time, ran and declined:
	// no reminder recorded, hence none announced.
	eventually(t, "the plain-SQL tasks' jobs ran", func() bool {
		return env.count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder' AND state = 'completed'
			AND (args->>'task_id')::bigint IN ($1, $2)`, taskID(sqlMoved), taskID(sqlDone)) == 2
	})
	if n := env.count(t, `SELECT count(*) FROM reminders WHERE task_id <> $1`, taskID(moved)); n != 0 {
		t.Fatalf("%d reminders recorded for tasks that were moved, deleted or completed", n)
	}
	c.noReminder()

	// Snooze after it fired: 10 minutes would be the board's choice; 1 s
	// here. It fires again, as a new reminder.
	again := time.Now().Add(time.Second)
	if r := c.request(map[string]any{"type": "task.update", "task_id": taskID(moved), "task": map[string]any{"remind_at": stamp(again)}}); r.typ() != "reply" {
		t.Fatalf("snooze after firing: %v", r)
	}
	g := c.nextReminder()
	if g.task()["id"] != moved["id"] || g["remind_at"] != stamp(again) || g["reminder_id"] == f["reminder_id"] {
		t.Fatalf("snoozed reminder %v (first was %v)", g, f)
	}
	c.noReminder()
}

// A user with no open session when the reminder fires gets it after hello
// on the next connect, as pending, once: a second connect does not get it.
func TestReminderPendingOnConnectOnce(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	user := "rem-offline"
	at := time.Now().Add(time.Second)
	task := createWithReminder(t, a, user, "water the plants", at)
	ctx, cancel := context.WithTimeout(context.Background(), reminderWait)
	defer cancel()
	for {
		var fired bool
		if err := env.DB.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM reminders WHERE task_id = $1)`, taskID(task)).Scan(&fired); err != nil {
			t.Fatalf("waiting for the reminder to fire: %v", err)
		}
		if fired {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the reminder did not fire")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := env.count(t, `SELECT count(*) FROM reminders WHERE task_id = $1 AND delivered_at IS NULL`, taskID(task)); n != 1 {
		t.Fatalf("%d undelivered reminders, want 1: nobody was connected", n)
	}

	first := dial(t, b.WS, user) // hello first: dial checks it
	f := first.nextReminder()
	if f["pending"] != true || f.task()["id"] != task["id"] || f["remind_at"] != stamp(at) {
		t.Fatalf("pending reminder %v", f)
	}
	if n := env.count(t, `SELECT count(*) FROM reminders WHERE task_id = $1 AND delivered_at IS NOT NULL`, taskID(task)); n != 1 {
		t.Fatal("the pending reminder is not recorded as delivered")
	}
	second := dial(t, a.WS, user)
	third := dial(t, b.WS, user)
	second.noReminder()
	third.noReminder()
	first.noReminder()
}
