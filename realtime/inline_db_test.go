package realtime

import (
	"context"
	"testing"
	"time"

	"tasksync/internal/testdb"
)

// The trigger's notification carries the event inline, byte for byte the
// frame a log read gives, for creates, updates and deletes, whatever the
// user id holds (colons, multi-byte characters); an event too big for the
// inline form comes as a pointer.
func TestNotificationCarriesTheEventWhenItFits(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		t.Fatal(err)
	}
	log := NewChangeLog(db.Pool)
	const user = "ü:ser:42"
	next := func() (payload string, ev *Event) {
		t.Helper()
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		u, seq, body, inline, err := parseNotification(n.Payload)
		if err != nil || u != user {
			t.Fatalf("payload %q: user %q, %v", n.Payload, u, err)
		}
		logged, err := log.Read(ctx, user, seq-1, seq, 1)
		if err != nil || len(logged) != 1 {
			t.Fatalf("log event %d: %v %v", seq, logged, err)
		}
		if !inline {
			return n.Payload, logged[0]
		}
		ev, err = decodeInline(u, seq, body)
		if err != nil {
			t.Fatalf("decode %q: %v", n.Payload, err)
		}
		if string(ev.Frame()) != string(logged[0].Frame()) || ev.TaskID != logged[0].TaskID ||
			!ev.CreatedAt.Equal(logged[0].CreatedAt) {
			t.Fatalf("inline event\n%s %d %v\nlog event\n%s %d %v", ev.Frame(), ev.TaskID, ev.CreatedAt,
				logged[0].Frame(), logged[0].TaskID, logged[0].CreatedAt)
		}
		return n.Payload, ev
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}

	exec(`INSERT INTO tasks (user_id, title, description, tags, due_at) VALUES ($1, 'a "quoted": title', e'line\nbreak ü', '{x,"y z"}', now())`, user)
	if p, ev := next(); p[0] != 'e' || ev.Op != "created" || ev.Seq != 1 {
		t.Fatalf("create: %q", p)
	}
	exec(`UPDATE tasks SET completed = true WHERE user_id = $1`, user)
	if p, ev := next(); p[0] != 'e' || ev.Op != "updated" || ev.Seq != 2 {
		t.Fatalf("update: %q", p)
	}
	// Too big inline (tags are not length-checked by SQL): a pointer.
	exec(`UPDATE tasks SET tags = ARRAY[repeat('t', 7000)] WHERE user_id = $1`, user)
	if p, ev := next(); p != "3:"+user || ev.Op != "updated" || len(ev.Frame()) < 7000 {
		t.Fatalf("big update: %.40q", p)
	}
	exec(`DELETE FROM tasks WHERE user_id = $1`, user)
	if p, ev := next(); p[0] != 'e' || ev.Op != "deleted" || ev.Seq != 4 {
		t.Fatalf("delete: %q", p)
	}
}
