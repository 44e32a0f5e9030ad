package realtime

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// inlinePayload is the payload migrations/00007's trigger sends for ev
// (the task JSON as Postgres prints json_build_object's, with spaces).
func inlinePayload(ev *Event) string {
	task := strings.NewReplacer(`":`, `" : `, `,"`, `, "`).Replace(string(ev.Task))
	return "e" + strconv.FormatInt(ev.Seq, 10) + ":" + strconv.Itoa(len(ev.UserID)) + ":" + ev.UserID + ":" +
		ev.Op + ":" + strconv.FormatInt(ev.TaskID, 10) + ":" + strconv.FormatInt(ev.CreatedAt.UnixMicro(), 10) + ":" + task
}

func pointerPayload(ev *Event) string { return strconv.FormatInt(ev.Seq, 10) + ":" + ev.UserID }

// inlineRig is a rig whose notifications the test hands to the listener's
// handler itself, in the order it chooses.
type inlineRig struct {
	*rig
	l *Listener
}

func newInlineRig(t *testing.T) *inlineRig {
	r := newRig(t, Config{})
	return &inlineRig{rig: r, l: &Listener{Hub: r.hub}}
}

// connectSettled connects a socket of user, reads its hello and waits until
// the hub's read at registration is done, so that every later log read is
// one a notification caused.
func (r *inlineRig) connectSettled(user string) *fakeConn {
	r.t.Helper()
	before := testutil.ToFloat64(r.hub.metrics.logReads)
	c := r.connect(user, nil)
	if f := c.must(r.t); typ(f) != TypeHello {
		r.t.Fatalf("first frame %v, want hello", f)
	}
	eventually(r.t, func() bool { return testutil.ToFloat64(r.hub.metrics.logReads) > before })
	return c
}

// commit appends n events of user to the log without notifying anyone and
// returns them.
func (r *inlineRig) commit(user string, n int) []*Event {
	r.t.Helper()
	from, _ := r.log.CurrentSeq(context.Background(), user)
	for range n {
		r.log.add(user)
	}
	evs, _ := r.log.Read(context.Background(), user, from, from+int64(n), n)
	if len(evs) != n {
		r.t.Fatalf("log has %d new events, want %d", len(evs), n)
	}
	return evs
}

// notify hands one payload to the listener's handler, as pgxlisten does.
func (r *inlineRig) notify(payload string) {
	r.t.Helper()
	n := &pgconn.Notification{Channel: NotifyChannel, Payload: payload}
	if err := r.l.HandleNotification(context.Background(), n, nil); err != nil {
		r.t.Fatalf("handle %q: %v", payload, err)
	}
}

func (r *inlineRig) count(form, result string) float64 {
	return testutil.ToFloat64(r.hub.metrics.notifications.WithLabelValues(form, result))
}

func (r *inlineRig) logReads() float64 { return testutil.ToFloat64(r.hub.metrics.logReads) }

// expectExactly checks that the next task events of c are from+1..to, in
// order, and that no other event follows them before the pong answering a
// ping sent after the last of them arrived: nothing missing, doubled or out
// of order.
func expectExactly(t *testing.T, c *fakeConn, from, to int64) {
	t.Helper()
	expectEvents(t, c, from, to)
	c.send(t, map[string]any{"type": "ping", "id": "end"})
	for {
		f := c.must(t)
		if typ(f) == TypePong {
			return
		}
		if strings.HasPrefix(typ(f), "task.") {
			t.Fatalf("extra event after %d: %v", to, f)
		}
	}
}

// An inline event that follows the last one dispatched goes to the
// sessions without a log read, with the same frame the log would give.
func TestInlineEventsAreDeliveredWithoutALogRead(t *testing.T) {
	t.Parallel()
	r := newInlineRig(t)
	c1, c2 := r.connectSettled("ada"), r.connectSettled("ada")
	reads := r.logReads()
	evs := r.commit("ada", 3)
	for _, ev := range evs {
		r.notify(inlinePayload(ev))
	}
	expectExactly(t, c1, 0, 3)
	expectExactly(t, c2, 0, 3)
	if got := r.logReads(); got != reads {
		t.Fatalf("%v log reads for inline events, want none", got-reads)
	}
	if got := r.count("inline", "dispatched"); got != 3 {
		t.Fatalf("inline dispatched %v, want 3", got)
	}
	// Byte for byte the frame of the log's event.
	c1.mu.Lock()
	var frames []string
	for _, b := range c1.out {
		if strings.HasPrefix(string(b), `{"type":"task.`) {
			frames = append(frames, string(b))
		}
	}
	c1.mu.Unlock()
	for i, ev := range evs {
		if frames[i] != string(ev.Frame()) {
			t.Fatalf("inline frame\n%s\nlog frame\n%s", frames[i], ev.Frame())
		}
	}
	// A user with no session here costs nothing: not decoded, not read.
	r.notify(inlinePayload(r.commit("nobody", 1)[0]))
	if got := r.count("inline", "no_session"); got != 1 || r.logReads() != reads {
		t.Fatalf("no_session %v, log reads +%v", got, r.logReads()-reads)
	}
}

// A lost inline notification is revealed by the next one (its seq is not
// last+1): the hub reads the log from its cursor, which brings the lost
// event and the revealing one, in order, once.
func TestLostInlineNotificationIsReadFromTheLog(t *testing.T) {
	t.Parallel()
	r := newInlineRig(t)
	c := r.connectSettled("bea")
	evs := r.commit("bea", 3)
	r.notify(inlinePayload(evs[0]))
	// evs[1]'s notification is lost.
	reads := r.logReads()
	r.notify(inlinePayload(evs[2]))
	expectExactly(t, c, 0, 3)
	if r.logReads() <= reads || r.count("inline", "read_log") != 1 {
		t.Fatalf("gap: log reads +%v, read_log %v; want a log read", r.logReads()-reads, r.count("inline", "read_log"))
	}
	// The lost notification turns up late: a duplicate, dropped. Then
	// live inline delivery goes on.
	r.notify(inlinePayload(evs[1]))
	r.notify(inlinePayload(r.commit("bea", 1)[0]))
	expectExactly(t, c, 3, 4)
	if got := r.count("inline", "stale"); got != 1 {
		t.Fatalf("stale %v, want 1", got)
	}
}

// Two inline notifications in the wrong order are delivered in seq order,
// once, whichever comes first: the late one, or the log read that the
// early one caused.
func TestReorderedInlineNotificationsAreDeliveredInOrderOnce(t *testing.T) {
	t.Parallel()
	for _, lateFirst := range []bool{true, false} {
		t.Run("late notification before the log read ends="+strconv.FormatBool(lateFirst), func(t *testing.T) {
			t.Parallel()
			r := newInlineRig(t)
			c := r.connectSettled("cai")
			evs := r.commit("cai", 2)
			entered, release := make(chan struct{}), make(chan struct{})
			r.log.mu.Lock()
			r.log.beforeHubRead = func() {
				close(entered)
				<-release
			}
			r.log.mu.Unlock()

			r.notify(inlinePayload(evs[1])) // seq 2 first: a gap, the hub starts a log read
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("a notification revealing a gap did not make the hub read the log")
			}
			if lateFirst {
				r.notify(inlinePayload(evs[0])) // seq 1 while the read runs: dispatched at once
				close(release)                  // the read returns 1 and 2: 1 is skipped
				expectExactly(t, c, 0, 2)
			} else {
				close(release)
				expectEvents(t, c, 0, 2)
				r.notify(inlinePayload(evs[0])) // seq 1 after the read: stale
				expectExactly(t, c, 2, 2)
			}
			if lateFirst && r.count("inline", "dispatched") != 1 {
				t.Fatalf("dispatched %v, want 1 (seq 1, inline)", r.count("inline", "dispatched"))
			}
			if !lateFirst && r.count("inline", "stale") != 1 {
				t.Fatalf("stale %v, want 1", r.count("inline", "stale"))
			}
		})
	}
}

// A notification that comes twice (inline or as a pointer) is delivered
// once.
func TestDuplicateNotificationIsDeliveredOnce(t *testing.T) {
	t.Parallel()
	r := newInlineRig(t)
	c := r.connectSettled("dov")
	ev := r.commit("dov", 1)[0]
	r.notify(inlinePayload(ev))
	r.notify(inlinePayload(ev))
	r.notify(pointerPayload(ev))
	expectExactly(t, c, 0, 1)
	if r.count("inline", "stale") != 1 || r.count("pointer", "stale") != 1 {
		t.Fatalf("stale: inline %v, pointer %v; want 1 and 1", r.count("inline", "stale"), r.count("pointer", "stale"))
	}
}

// A big event comes as a pointer (the old form, also what an older trigger
// sends): the hub reads it from the log, and inline events after it go on.
func TestPointerNotificationIsReadFromTheLog(t *testing.T) {
	t.Parallel()
	r := newInlineRig(t)
	c := r.connectSettled("eli")
	evs := r.commit("eli", 3)
	r.notify(inlinePayload(evs[0]))
	reads := r.logReads()
	r.notify(pointerPayload(evs[1]))
	expectEvents(t, c, 0, 2)
	if r.logReads() <= reads {
		t.Fatal("a pointer notification was delivered without a log read")
	}
	r.notify(inlinePayload(evs[2]))
	expectExactly(t, c, 2, 3)
}

// An inline payload the hub cannot decode (a bug in the trigger) is not
// lost: the log has the event.
func TestUndecodableInlineEventIsReadFromTheLog(t *testing.T) {
	t.Parallel()
	r := newInlineRig(t)
	c := r.connectSettled("fay")
	ev := r.commit("fay", 1)[0]
	p := inlinePayload(ev)
	r.notify(p[:len(p)-1]) // the task JSON cut short
	expectExactly(t, c, 0, 1)
	if r.count("inline", "read_log") != 1 {
		t.Fatalf("read_log %v, want 1", r.count("inline", "read_log"))
	}
}

// Whatever happens to the notifications (lost, doubled, reordered, some
// as pointers), every session gets every event once and in order, by the
// time the listener has reconnected (which reads the log for every user:
// the recovery for notifications lost at the end).
func TestInlineNotificationsLoseNothing(t *testing.T) {
	t.Parallel()
	r := newInlineRig(t)
	r.unchecked = true
	users := []string{"gus", "hal"}
	conns := map[string][]*fakeConn{}
	for _, u := range users {
		conns[u] = []*fakeConn{r.connectSettled(u), r.connectSettled(u)}
	}
	rng := rand.New(rand.NewPCG(12, 7))
	const n = 300
	var payloads []string
	for _, u := range users {
		for _, ev := range r.commit(u, n) {
			switch x := rng.IntN(100); {
			case x < 15: // lost
			case x < 25:
				payloads = append(payloads, inlinePayload(ev), inlinePayload(ev))
			case x < 35:
				payloads = append(payloads, pointerPayload(ev))
			default:
				payloads = append(payloads, inlinePayload(ev))
			}
		}
	}
	// Interleave the two users and swap some neighbours.
	rng.Shuffle(len(payloads), func(i, j int) {
		if d := i - j; d >= -3 && d <= 3 {
			payloads[i], payloads[j] = payloads[j], payloads[i]
		}
	})
	for _, p := range payloads {
		r.notify(p)
	}
	if err := r.l.HandleBacklog(context.Background(), NotifyChannel, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		for _, c := range conns[u] {
			expectExactly(t, c, 0, n)
		}
	}
	if r.count("inline", "dispatched") == 0 || r.count("inline", "read_log") == 0 {
		t.Fatalf("dispatched %v, read_log %v: both paths should have run", r.count("inline", "dispatched"), r.count("inline", "read_log"))
	}
}

func TestParseNotification(t *testing.T) {
	t.Parallel()
	at := time.UnixMicro(1764662400123456)
	for _, tc := range []struct {
		payload, user string
		seq           int64
		inline        bool
		ok            bool
	}{
		{"12:alice", "alice", 12, false, true},
		{"12:a:b:c", "a:b:c", 12, false, true}, // user ids may hold colons
		{"e12:5:alice:created:7:1764662400123456:{}", "alice", 12, true, true},
		{"e3:5:a:b:c:deleted:7:1764662400123456:", "a:b:c", 3, true, true},
		{"", "", 0, false, false},
		{"12", "", 0, false, false},
		{"12:", "", 0, false, false},
		{"x:alice", "", 0, false, false},
		{"0:alice", "", 0, false, false},
		{"e12:9:alice:x", "", 0, false, false}, // length beyond the payload
		{"e12:5:alicex", "", 0, false, false},  // no colon after the user
		{"e12:0::created", "", 0, false, false},
		{"e12:-1:alice", "", 0, false, false},
		{"e:5:alice:", "", 0, false, false},
	} {
		user, seq, _, inline, err := parseNotification(tc.payload)
		if (err == nil) != tc.ok || user != tc.user || seq != tc.seq || inline != tc.inline {
			t.Errorf("%q: %q %d inline=%v err=%v", tc.payload, user, seq, inline, err)
		}
	}
	ev, err := decodeInline("a:b", 3, "updated:7:1764662400123456:{\"id\" : 7, \"title\" : \"x:y\"}")
	if err != nil || ev.Op != "updated" || ev.TaskID != 7 || !ev.CreatedAt.Equal(at) ||
		string(ev.Frame()) != `{"type":"task.updated","seq":3,"task":{"id":7,"title":"x:y"}}` {
		t.Fatalf("decode: %+v %s %v", ev, ev.Frame(), err)
	}
	ev, err = decodeInline("u", 4, "deleted:7:1764662400123456:")
	if err != nil || string(ev.Frame()) != `{"type":"task.deleted","seq":4,"task_id":7}` {
		t.Fatalf("decode delete: %v", err)
	}
	for _, body := range []string{"", "created:7:1:", "deleted:7:1:{}", "moved:7:1:{}", "created:x:1:{}",
		"created:7:x:{}", "created:7:1:{", "created:7:1:{} {}"} {
		if _, err := decodeInline("u", 1, body); err == nil {
			t.Errorf("decode %q: no error", body)
		}
	}
}

func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{"12:alice", "e12:5:alice:created:7:1764662400123456:{\"id\" : 7}",
		"e3:1:u:deleted:7:1:", "e1:3:a:b:updated:1:2:[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		user, seq, body, inline, err := parseNotification(p)
		if err != nil {
			return
		}
		if user == "" || seq <= 0 || !strings.Contains(p, user) {
			t.Fatalf("%q: user %q seq %d", p, user, seq)
		}
		if !inline {
			return
		}
		ev, err := decodeInline(user, seq, body)
		if err != nil {
			return
		}
		if f := ev.Frame(); !strings.HasPrefix(string(f), `{"type":"task.`+ev.Op+`","seq":`+strconv.FormatInt(seq, 10)) {
			t.Fatalf("%q: frame %s", p, f)
		}
	})
}
