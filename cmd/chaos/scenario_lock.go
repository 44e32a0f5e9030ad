package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// lockCreates is how many creates are pipelined on the socket while the
// table is locked (the repro).
const lockCreates = 4

// scenarioLock is issue 9 row 3. A fresh instance with WS_PING_INTERVAL=2s
// (quick: 1s, with WS_PONG_TIMEOUT=2s and WS_REQUEST_TIMEOUT=3s, so that a
// short lock outlasts them); one socket; `LOCK TABLE tasks IN ACCESS
// EXCLUSIVE MODE` held for --lock-for in a connection of its own, and 4
// creates (with mutation_ids) pipelined on the socket while it is held,
// then an application ping every second. Before the reader was freed, the
// socket was reset at ping interval + pong timeout (12 s). The socket must
// stay open for the whole lock, every ping must be answered, and after the
// release each create's answer must be what the database holds: a reply
// and its row, or `unavailable` and no row; never `internal`. The creates
// are then sent again with the same mutation_ids: each must be applied
// exactly once in the end.
func (h *harness) scenarioLock(ctx context.Context, sr *scenarioResult) error {
	sz := h.cfg.Sizes
	env := []string{"WS_PING_INTERVAL=2s"}
	if h.cfg.Quick {
		env = []string{"WS_PING_INTERVAL=1s", "WS_PONG_TIMEOUT=2s", "WS_REQUEST_TIMEOUT=3s"}
	}
	user := h.scenarioUser("lock")
	if err := h.mintTokens(ctx, user); err != nil {
		return err
	}
	pool, err := h.scenarioPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	in, err := h.scenarioInstance(ctx, "lock", env...)
	if err != nil {
		return err
	}
	defer h.endInstance(sr, in)

	conn, err := h.dial(ctx, in, user, noSince, "lock")
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	ls := &lockSocket{answers: map[string]frame{}, answeredAt: map[string]time.Time{}, pongAt: map[string]time.Time{}, closedCh: make(chan struct{})}
	readCtx, stopReading := context.WithCancel(ctx)
	var reader sync.WaitGroup
	reader.Go(func() { ls.read(readCtx, conn) })
	defer func() { stopReading(); reader.Wait() }()
	h.waitFor(ctx, 30*time.Second, "hello on the lock socket", func() bool { return ls.frameCount() > 0 })

	// The lock, in a transaction of its own.
	lockConn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection for the lock: %w", err)
	}
	defer lockConn.Release()
	tx, err := lockConn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = tx.Exec(lctx, `LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE`)
	cancel()
	if err != nil {
		return fmt.Errorf("lock the tasks table: %w", err)
	}
	lockedAt := time.Now()

	title := func(i int) string { return fmt.Sprintf("%s-create-%d", user, i) }
	createFrame := func(i int, id string) []byte {
		return fmt.Appendf(nil, `{"type":"task.create","id":%q,"mutation_id":%q,"task":{"title":%q,"description":"sent while tasks was locked"}}`, id, title(i), title(i))
	}
	send := func(b []byte) error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	for i := range lockCreates {
		if err := send(createFrame(i, fmt.Sprint("c", i))); err != nil {
			sr.fail("could not send create %d while the table was locked: %v", i, err)
		}
	}
	var pingsSent []time.Time
	pingTick := time.NewTicker(time.Second)
	for time.Since(lockedAt) < sz.LockFor && !ls.isClosed() && ctx.Err() == nil {
		if err := send(fmt.Appendf(nil, `{"type":"ping","id":"p%d"}`, len(pingsSent))); err == nil {
			pingsSent = append(pingsSent, time.Now())
		}
		select {
		case <-pingTick.C:
		case <-ls.closedCh:
		case <-ctx.Done():
		}
	}
	pingTick.Stop()
	heldFor := time.Since(lockedAt)
	closedDuringLock := ls.isClosed()
	if err := tx.Rollback(ctx); err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	releasedAt := time.Now()

	// Every create answered; then what the database holds.
	h.waitFor(ctx, 90*time.Second, "the locked creates answered", func() bool {
		return ls.isClosed() || ls.answerCount("c") == lockCreates
	})
	// Every ping answered (the last ones may come after the release).
	h.waitFor(ctx, 30*time.Second, "every ping answered", func() bool {
		return ls.isClosed() || ls.pongCount() == len(pingsSent)
	})
	rows := func(i int) (int, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE user_id = $1 AND title = $2`, user, title(i)).Scan(&n)
		return n, err
	}
	var outcomes counters
	var answerTimes []string
	for i := range lockCreates {
		id := fmt.Sprint("c", i)
		f, at, ok := ls.answer(id)
		n, err := rows(i)
		if err != nil {
			return fmt.Errorf("count the rows of create %d: %w", i, err)
		}
		switch {
		case !ok:
			outcomes.add("no answer", 1)
			sr.fail("create %d: no answer within 90 s of the release (%d rows)", i, n)
		case f.Type == "reply" && n == 1:
			outcomes.add("reply + row", 1)
		case f.Type == "error" && f.Code == "unavailable" && n == 0:
			outcomes.add("unavailable + no row", 1)
		default:
			answer := f.Type
			if f.Code != "" {
				answer += " " + f.Code
			}
			outcomes.add(answer+fmt.Sprintf(" + %d rows", n), 1)
			sr.fail("create %d answered %s while the database holds %d rows", i, answer, n)
		}
		if ok {
			answerTimes = append(answerTimes, fmt.Sprintf("%.1fs", at.Sub(lockedAt).Seconds()))
		}
	}

	// The same creates again, same mutation_ids: each applied once in the
	// end, and a replay only of what had been answered as done.
	closedBeforeResend := ls.isClosed()
	if !closedBeforeResend {
		for i := range lockCreates {
			if err := send(createFrame(i, fmt.Sprint("again", i))); err != nil {
				sr.fail("could not resend create %d: %v", i, err)
			}
		}
		h.waitFor(ctx, 60*time.Second, "the resent creates answered", func() bool {
			return ls.isClosed() || ls.answerCount("again") == lockCreates
		})
	}
	var resent counters
	for i := range lockCreates {
		first, _, _ := ls.answer(fmt.Sprint("c", i))
		f, _, ok := ls.answer(fmt.Sprint("again", i))
		n, err := rows(i)
		if err != nil {
			return err
		}
		switch {
		case closedBeforeResend:
			resent.add("not sent: the socket was closed", 1)
		case !ok:
			resent.add("no answer", 1)
			sr.fail("create %d sent again: no answer (%d rows)", i, n)
		case f.Type != "reply" || n != 1:
			resent.add(f.Type+" "+f.Code, 1)
			sr.fail("create %d sent again: answered %s %s, %d rows", i, f.Type, f.Code, n)
		case f.Replayed && first.Type != "reply":
			resent.add("replayed after unavailable", 1)
			sr.fail("create %d was answered %s %s, yet its retry was a replay: it had committed", i, first.Type, first.Code)
		case f.Replayed:
			resent.add("replayed", 1)
		default:
			resent.add("applied now", 1)
		}
	}

	code := "open"
	if ls.isClosed() {
		code = fmt.Sprintf("closed %.1fs after the lock: %s", ls.closedAt().Sub(lockedAt).Seconds(), ls.closeCode())
	}
	envText := strings.Join(env, " ")
	sr.row("table locked for", heldFor.Round(100*time.Millisecond), fmt.Sprintf("instance with %s; %d creates pipelined on one socket", envText, lockCreates))
	sr.row("socket during the lock", map[bool]string{false: "open", true: "CLOSED"}[closedDuringLock], "at the end: "+code)
	sr.row("app pings answered", fmt.Sprintf("%d/%d", ls.pongCount(), len(pingsSent)), "slowest pong during the lock "+ls.slowestPong(pingsSent, releasedAt).String())
	sr.row("answers to the creates", kv(outcomes.snapshot()), "answered at "+strings.Join(answerTimes, ", ")+" after the lock; never internal")
	sr.row("the same creates sent again", kv(resent.snapshot()), "each exactly one row in the end")
	sr.figure("lock_seconds", round1(heldFor.Seconds()))
	sr.figure("env", envText)
	sr.figure("closed_during_lock", closedDuringLock)
	sr.figure("pings_sent", len(pingsSent))
	sr.figure("pongs", ls.pongCount())
	sr.figure("outcomes", outcomes.snapshot())
	sr.figure("answer_times_after_lock", answerTimes)
	sr.figure("resent", resent.snapshot())
	if closedDuringLock {
		sr.fail("the socket was closed %.1fs into the lock (%s)", ls.closedAt().Sub(lockedAt).Seconds(), ls.closeCode())
	} else if ls.isClosed() {
		sr.fail("the socket was closed after the lock was released (%s)", code)
	}
	if ls.pongCount() != len(pingsSent) {
		sr.fail("%d of %d app pings unanswered", len(pingsSent)-ls.pongCount(), len(pingsSent))
	}
	if ls.firstFrame() != "hello" {
		sr.fail("the first frame was %s, not hello", ls.firstFrame())
	}
	return nil
}

// lockSocket records what one socket receives, in order.
type lockSocket struct {
	mu         sync.Mutex
	frames     int
	first      string
	answers    map[string]frame // by request id: the first answer
	answeredAt map[string]time.Time
	pongAt     map[string]time.Time
	closeErr   error
	closed     time.Time
	closedCh   chan struct{}
}

func (s *lockSocket) read(ctx context.Context, conn *websocket.Conn) {
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			s.mu.Lock()
			s.closeErr, s.closed = err, time.Now()
			s.mu.Unlock()
			close(s.closedCh)
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = frame{Type: "undecodable"}
		}
		var id string
		_ = json.Unmarshal(f.ID, &id)
		s.mu.Lock()
		s.frames++
		if s.frames == 1 {
			s.first = f.Type
		}
		switch {
		case f.Type == "pong":
			s.pongAt[id] = time.Now()
		case (f.Type == "reply" || f.Type == "error") && id != "":
			if _, ok := s.answers[id]; !ok {
				s.answers[id], s.answeredAt[id] = f, time.Now()
			}
		}
		s.mu.Unlock()
	}
}

func (s *lockSocket) frameCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

func (s *lockSocket) firstFrame() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *lockSocket) isClosed() bool {
	select {
	case <-s.closedCh:
		return true
	default:
		return false
	}
}

func (s *lockSocket) closedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *lockSocket) closeCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr == nil {
		return ""
	}
	return closeCode(s.closeErr)
}

func (s *lockSocket) answer(id string) (frame, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.answers[id]
	return f, s.answeredAt[id], ok
}

// answerCount counts the answers to requests whose id starts with prefix.
func (s *lockSocket) answerCount(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.answers {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

func (s *lockSocket) pongCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pongAt)
}

// slowestPong is the longest wait for a pong of a ping sent before the
// release (an unanswered one counts until the release).
func (s *lockSocket) slowestPong(sent []time.Time, released time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var worst time.Duration
	for i, at := range sent {
		got, ok := s.pongAt[fmt.Sprint("p", i)]
		if !ok {
			got = released
		}
		worst = max(worst, got.Sub(at))
	}
	return roundDur(worst)
}
