package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"tasksync"
	"tasksync/internal/testdb"
	"tasksync/tasks"
)

// Hot-path micro-benchmarks (docs/BENCHMARKS.md). No timed assertions:
// `make bench` runs them and records the figures.

// benchTaskJSON is a task as the change-log trigger stores it (json, with
// the spacing json_build_object produces, which encodeEvent compacts).
const benchTaskJSON = `{"id" : 123456, "user_id" : "lg-abcdef-u1", "title" : "lg-abcdef-123456", "description" : "", "completed" : false, "priority" : "medium", "tags" : [], "due_date" : null, "created_at" : "2026-11-25T19:25:40.577141Z", "updated_at" : "2026-11-25T19:25:40.577141Z", "version" : 1}`

func benchEvent(seq int64) *Event {
	return &Event{UserID: "lg-abcdef-u1", Seq: seq, Op: "created", TaskID: 123456,
		Task: json.RawMessage(benchTaskJSON), CreatedAt: time.Now()}
}

// BenchmarkEventFrame encodes one change event (once per event, whatever
// the number of sockets it goes to).
func BenchmarkEventFrame(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := benchEvent(int64(i + 1))
		if len(ev.Frame()) == 0 {
			b.Fatal("empty frame")
		}
	}
}

// BenchmarkDecodeFrame decodes a task.create frame as the read loop does.
func BenchmarkDecodeFrame(b *testing.B) {
	frame := []byte(`{"type":"task.create","id":12345,"mutation_id":"lg-abcdef-12345","task":{"title":"lg-abcdef-12345","description":"","tags":["home","shop"],"priority":"high","due_date":"2026-12-01"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		f, err := decodeFrame(frame)
		if err != nil || f.Type != TypeTaskCreate {
			b.Fatal(err)
		}
		if _, err := taskFields(f.Task); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTask() *tasks.Task {
	now := time.Date(2026, 11, 25, 19, 25, 40, 577141000, time.UTC)
	return &tasks.Task{ID: 123456, UserID: "lg-abcdef-u1", Title: "lg-abcdef-123456", Priority: tasks.PriorityMedium,
		Tags: []string{}, CreatedAt: now, UpdatedAt: now, Version: 1}
}

// BenchmarkEncodeReply encodes the reply to a mutation (once per request).
func BenchmarkEncodeReply(b *testing.B) {
	t := benchTask()
	id := json.RawMessage(`12345`)
	b.ReportAllocs()
	for b.Loop() {
		if len(encode(replyFrame{Type: TypeReply, ID: id, Re: TypeTaskCreate, Op: tasks.OpCreated, Task: t, TaskID: t.ID})) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkEncodeError encodes a validation error reply.
func BenchmarkEncodeError(b *testing.B) {
	err := tasksync.Invalid(map[string]string{"title": "is required and must not be blank"})
	id := json.RawMessage(`12345`)
	b.ReportAllocs()
	for b.Loop() {
		if len(encodeError(id, TypeTaskCreate, err)) == 0 {
			b.Fatal("empty")
		}
	}
}

// benchHub is a hub with sessions that have no socket: the dispatch path
// up to each session's send queue, which the benchmark empties as the
// writer goroutine would (take), without the socket write itself.
func benchHub(b *testing.B) (*Hub, *Server) {
	b.Helper()
	h := NewHub(HubConfig{Broker: NewMemoryBroker(), Metrics: NewMetrics(nil), Instance: "bench"})
	srv := NewServer(Config{}, ServerDeps{Hub: h})
	return h, srv
}

func benchSession(b *testing.B, h *Hub, srv *Server, user string) *session {
	b.Helper()
	s := newSession(srv, nil, user+"-"+strconv.Itoa(len(user)), user, 0, time.Time{})
	b.Cleanup(s.cancel)
	if err := h.register(s, 0); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkHubFanout dispatches one event to the N sessions of one user:
// lookup, cursor, one encode, N queue appends and wake-ups, N takes. Its
// ns/delivery is the hub's share of a delivery (the socket write, measured
// by the loadgen's broadcast scenario, is the larger one).
func BenchmarkHubFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			h, srv := benchHub(b)
			list := make([]*session, n)
			for i := range list {
				list[i] = benchSession(b, h, srv, "u1")
			}
			b.ReportAllocs()
			seq := int64(0)
			for b.Loop() {
				seq++
				ev := benchEvent(seq)
				ev.UserID = "u1"
				h.dispatch([]*Event{ev})
				for _, s := range list {
					s.take(nil)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkHubNotify is the cost of one change-log notification for a
// user, with one other user's session here, and with 10,000 idle users'
// sessions here: it must not grow with other users' sessions (scenario e).
func BenchmarkHubNotify(b *testing.B) {
	for _, others := range []int{0, 10000} {
		b.Run(fmt.Sprintf("idle_users=%d", others), func(b *testing.B) {
			h, srv := benchHub(b)
			benchSession(b, h, srv, "u1")
			for i := 0; i < others; i++ {
				benchSession(b, h, srv, "idle-"+strconv.Itoa(i))
			}
			b.ReportAllocs()
			seq := int64(0)
			for b.Loop() {
				seq++
				h.notify("u1", seq)
				h.notify("nobody-here", seq)
			}
		})
	}
}

// BenchmarkChangeLogReadAfter is the hub's batched log read after a burst
// of notifications: one new event for each of U users, one round trip.
func BenchmarkChangeLogReadAfter(b *testing.B) {
	db := testdb.New(b)
	ctx := context.Background()
	const users, perUser = 100, 20
	if _, err := db.Pool.Exec(ctx, `INSERT INTO tasks (user_id, title)
		SELECT 'u' || u, 'task ' || i FROM generate_series(1, $1) u, generate_series(1, $2) i`, users, perUser); err != nil {
		b.Fatal(err)
	}
	log := NewChangeLog(db.Pool)
	for _, u := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("users=%d", u), func(b *testing.B) {
			cursors := make(map[string]int64, u)
			for i := 1; i <= u; i++ {
				cursors["u"+strconv.Itoa(i)] = perUser - 1
			}
			b.ReportAllocs()
			for b.Loop() {
				evs, err := log.ReadAfter(ctx, cursors, fetchPerUser)
				if err != nil || len(evs) != u {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
}
