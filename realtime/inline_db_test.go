package realtime

import (
	"context"
	"testing"
	"time"

	"tasksync/internal/testdb"
)

// The trigger's notification carries the event inline, byte for byte the
// frame a log read gives, for creates, updates and deletes, whatever the
// user id holds (colons, multi-byte characters), up to InlineNotifyMax
// bytes; one byte more and it comes as a pointer.
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
	p2, ev := next()
	if p2[0] != 'e' || ev.Op != "updated" || ev.Seq != 2 {
		t.Fatalf("update: %q", p2)
	}
	// Up to InlineNotifyMax bytes the event goes inline, one byte more
	// and it is a pointer. One tag of k bytes instead of ["x","y z"]
	// (tags are not length-checked by SQL); seq and version keep their
	// number of digits, the times their format.
	k := InlineNotifyMax - len(p2) + len(`["x","y z"]`) - len(`[""]`)
	exec(`UPDATE tasks SET tags = ARRAY[repeat('t', $2)] WHERE user_id = $1`, user, k)
	if p, ev := next(); p[0] != 'e' || len(p) != InlineNotifyMax || ev.Seq != 3 {
		t.Fatalf("update to %d bytes: %d bytes, %.40q", InlineNotifyMax, len(p), p)
	}
	exec(`UPDATE tasks SET tags = ARRAY[repeat('t', $2)] WHERE user_id = $1`, user, k+1)
	if p, ev := next(); p != "4:"+user || ev.Op != "updated" || len(ev.Frame()) < InlineNotifyMax-100 {
		t.Fatalf("update past %d bytes: %.40q", InlineNotifyMax, p)
	}
	exec(`DELETE FROM tasks WHERE user_id = $1`, user)
	if p, ev := next(); p[0] != 'e' || ev.Op != "deleted" || ev.Seq != 5 {
		t.Fatalf("delete: %q", p)
	}
}
