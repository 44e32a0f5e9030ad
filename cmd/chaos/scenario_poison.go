package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// batchInFlight is how many creates each poison-batch writer keeps
// unanswered: the server's default WS_MAX_IN_FLIGHT, so that mutations
// queue for group commit and share transactions.
const batchInFlight = 8

// scenarioPoisonBatch is issue 9 row 5, from outside. On a fresh instance
// (frame rate limits lifted, so that writers are limited only by the
// server), --batch-writers users each keep 8 creates in flight on a
// socket for --batch-for, half of them with a mutation_id (resent under it
// until answered) and half without (inserted together by one multi-row
// INSERT when they share a batch); meanwhile poison frames of every kind
// go in on sockets of two other users. Afterwards /metrics must show 0
// batch reruns (tasksync_batch_reruns_total: a batch rolled back and run
// again, which is what one user's bad input did to the others), every
// valid create must be in the table once, every poison frame refused as
// promised, and nothing of the poison stored. Batching itself is shown by
// tasksync_mutations_total / tasksync_write_transactions_total.
func (h *harness) scenarioPoisonBatch(ctx context.Context, sr *scenarioResult) error {
	sz := h.cfg.Sizes
	writers := make([]*batchWriter, sz.BatchWriters)
	var users []string
	for i := range writers {
		writers[i] = &batchWriter{h: h, idx: i, user: h.scenarioUser(fmt.Sprint("batch-w", i)), pending: map[string]*batchMut{}, acked: map[string]bool{}, unknown: map[string]bool{}}
		users = append(users, writers[i].user)
	}
	poisonUsers := []string{h.scenarioUser("batch-poison0"), h.scenarioUser("batch-poison1")}
	if err := h.mintTokens(ctx, append(append([]string(nil), users...), poisonUsers...)...); err != nil {
		return err
	}
	pool, err := h.scenarioPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	in, err := h.scenarioInstance(ctx, "batch", "WS_FRAME_RATE=100000", "WS_FRAME_BURST=100000")
	if err != nil {
		return err
	}
	defer h.endInstance(sr, in)

	until := time.Now().Add(sz.BatchFor)
	runCtx, cancel := context.WithTimeout(ctx, sz.BatchFor+2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() { w.run(runCtx, in, until) })
	}
	var poisoned poisonStats
	var poisonN atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := g; time.Now().Before(until) && runCtx.Err() == nil; i += 4 {
				c := &poisonCases[i%len(poisonCases)]
				tag := fmt.Sprintf("chaos-%s-batch-poison-%d", h.runTag, poisonN.Add(1))
				answer, good, inconclusive := h.poisonOnce(runCtx, in, poisonUsers[i%2], c, tag)
				poisoned.record(c, answer, good, inconclusive)
				sleepCtx(runCtx, 20*time.Millisecond)
			}
		})
	}
	wg.Wait()

	m, err := in.metrics(ctx, batchCounters...)
	if err != nil {
		return err
	}

	// The table against what was answered.
	titles := map[string]int{}
	rows, err := pool.Query(ctx, `SELECT title, count(*) FROM tasks WHERE user_id = ANY($1) GROUP BY title`, users)
	if err != nil {
		return fmt.Errorf("read the writers' tasks: %w", err)
	}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			return err
		}
		titles[t] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var poisonStored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM task_events WHERE user_id = ANY($1)`, poisonUsers).Scan(&poisonStored); err != nil {
		return err
	}

	var sent, acked, keyed, unknown, unanswered, missing, extra int
	var answers counters
	for _, w := range writers {
		w.mu.Lock()
		sent += w.sent
		keyed += w.keyed
		for _, k := range []struct {
			name string
			n    int
		}{{"internal", w.internal}, {"retried", w.retried}, {"refused", w.refused}} {
			answers.add(k.name, int64(k.n))
		}
		unknown += len(w.unknown)
		unanswered += len(w.pending)
		for title := range w.acked {
			acked++
			if titles[title] != 1 {
				missing++
				sr.example("%s: create %s acknowledged, %d rows", w.user, title, titles[title])
			}
		}
		for title, n := range titles {
			if !strings.HasPrefix(title, w.user+"-") || w.acked[title] || w.unknown[title] {
				continue
			}
			extra += n
			sr.example("%s: %d rows titled %s that was never acknowledged", w.user, n, title)
		}
		w.mu.Unlock()
	}
	poisonWrong := 0
	for _, by := range poisoned.bad {
		poisonWrong += sum(by)
	}
	muts, txs := m["tasksync_mutations_total"], m["tasksync_write_transactions_total"]
	reruns, haveReruns := m["tasksync_batch_reruns_total"]
	perTx := 0.0
	if txs > 0 {
		perTx = muts / txs
	}

	sr.row("writers", len(writers), fmt.Sprintf("%d creates in flight each for %s; half with a mutation_id", batchInFlight, sz.BatchFor))
	sr.row("creates sent", sent, fmt.Sprintf("%d acked (%d with a mutation_id); answers asking for a retry: %s", acked, keyed, kv(answers.snapshot())))
	sr.row("poison frames", sum(poisoned.sent), fmt.Sprintf("%d answered as promised, %d not, %d inconclusive; stored: %d changes", sum(poisoned.ok), poisonWrong, sum(poisoned.unclear), poisonStored))
	sr.row("group commit", fmt.Sprintf("%.2f", perTx), fmt.Sprintf("mutations per write transaction (%.0f in %.0f)", muts, txs))
	if haveReruns {
		sr.row("batch reruns (/metrics)", int64(reruns), "tasksync_batch_reruns_total; must be 0")
	} else {
		sr.row("batch reruns (/metrics)", "n/a", "this server has no tasksync_batch_reruns_total")
	}
	sr.row("table != answers", missing+extra, fmt.Sprintf("acked creates without exactly one row %d, rows never acked %d; unanswered %d, outcome unknown %d", missing, extra, unanswered, unknown))
	sr.figure("writers", len(writers))
	sr.figure("creates_sent", sent)
	sr.figure("creates_acked", acked)
	sr.figure("poison_sent", sum(poisoned.sent))
	sr.figure("poison_wrong", poisonWrong)
	sr.figure("poison_stored", poisonStored)
	sr.figure("mutations_per_transaction", round1(perTx*10)/10)
	sr.figure("mutations_total", muts)
	sr.figure("write_transactions_total", txs)
	if haveReruns {
		sr.figure("batch_reruns", reruns)
	}

	switch {
	case !haveReruns:
		sr.fail("the server exposes no tasksync_batch_reruns_total: reruns cannot be counted")
	case reruns > 0:
		sr.fail("%.0f mutations rerun after their batch was rolled back, with no fault but poison frames", reruns)
	}
	for c, by := range poisoned.bad {
		sr.fail("poison %q answered %s", c, kvInt(by))
	}
	if poisonStored > 0 {
		sr.fail("%d changes stored from poison frames", poisonStored)
	}
	if missing+extra > 0 {
		sr.fail("the table differs from the answers: %d acked creates without exactly one row, %d rows never acked", missing, extra)
	}
	if unanswered > 0 {
		sr.fail("%d creates never answered", unanswered)
	}
	if n := answers.snapshot()["refused"]; n > 0 {
		sr.fail("%d valid creates refused", n)
	}
	if n := answers.snapshot()["internal"]; n > 0 {
		sr.fail("%d creates answered internal with no fault", n)
	}
	return nil
}

// batchMut is one create of a poison-batch writer.
type batchMut struct {
	id, title string
	keyed     bool // with a mutation_id: resent under it until answered
	frame     []byte
	sent      bool
	retryAt   time.Time
}

// batchWriter keeps batchInFlight creates of one user in flight.
type batchWriter struct {
	h    *harness
	idx  int
	user string

	mu       sync.Mutex
	n        int
	pending  map[string]*batchMut // by request id
	acked    map[string]bool      // titles answered with a reply
	unknown  map[string]bool      // keyless creates without a definite answer
	sent     int
	keyed    int
	retried  int
	internal int
	refused  int
}

// run writes until until, then waits for every pending create to be
// answered (or ctx to end).
func (w *batchWriter) run(ctx context.Context, in *instance, until time.Time) {
	b := newBackoff()
	for ctx.Err() == nil {
		w.mu.Lock()
		done := !time.Now().Before(until) && len(w.pending) == 0
		w.mu.Unlock()
		if done {
			return
		}
		conn, err := w.h.dial(ctx, in, w.user, noSince, "batch")
		if err != nil {
			sleepCtx(ctx, b.next())
			continue
		}
		w.session(ctx, conn, until)
		conn.CloseNow()
	}
}

// session writes on one socket until the writer is done or the socket
// ends; unanswered keyed creates are resent on the next socket.
func (w *batchWriter) session(ctx context.Context, conn *websocket.Conn, until time.Time) {
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var f frame
			if json.Unmarshal(data, &f) == nil && (f.Type == "reply" || f.Type == "error") {
				w.answer(&f)
			}
		}
	}()
	defer func() {
		conn.CloseNow()
		<-readDone
		w.mu.Lock()
		for id, m := range w.pending {
			if !m.keyed {
				// No way to ask again: it may or may not have been applied.
				if m.sent {
					w.unknown[m.title] = true
				}
				delete(w.pending, id)
				continue
			}
			m.sent = false
		}
		w.mu.Unlock()
	}()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-readDone:
			return
		case <-t.C:
		}
		now := time.Now()
		w.mu.Lock()
		if !now.Before(until) && len(w.pending) == 0 {
			w.mu.Unlock()
			return
		}
		if now.Before(until) {
			for len(w.pending) < batchInFlight {
				w.newCreate()
			}
		}
		var out [][]byte
		for _, m := range w.pending {
			if !m.sent && !now.Before(m.retryAt) {
				m.sent = true
				w.sent++
				out = append(out, m.frame)
			}
		}
		w.mu.Unlock()
		for _, f := range out {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Write(wctx, websocket.MessageText, f)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// newCreate queues a new create. Called with w.mu held.
func (w *batchWriter) newCreate() {
	w.n++
	m := &batchMut{id: fmt.Sprint("b", w.n), title: fmt.Sprintf("%s-%d", w.user, w.n), keyed: w.n%2 == 0}
	if m.keyed {
		w.keyed++
		m.frame = fmt.Appendf(nil, `{"type":"task.create","id":%q,"mutation_id":%q,"task":{"title":%q,"description":"batch","tags":["batch"]}}`, m.id, m.title, m.title)
	} else {
		m.frame = fmt.Appendf(nil, `{"type":"task.create","id":%q,"task":{"title":%q,"description":"batch","tags":["batch"]}}`, m.id, m.title)
	}
	w.pending[m.id] = m
}

// answer settles or reschedules the create a reply or error names.
func (w *batchWriter) answer(f *frame) {
	var id string
	if json.Unmarshal(f.ID, &id) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.pending[id]
	if m == nil {
		return
	}
	if f.Type == "reply" {
		w.acked[m.title] = true
		delete(w.pending, id)
		return
	}
	switch f.Code {
	case "unavailable", "rate_limited", "internal":
		w.retried++
		if f.Code == "internal" {
			w.internal++
		}
		if !m.keyed && f.Code != "rate_limited" {
			// unavailable may mean "outcome unknown", internal says
			// nothing: without a mutation_id it cannot be asked again.
			w.unknown[m.title] = true
			delete(w.pending, id)
			return
		}
		// Resent under its mutation_id (rate_limited: nothing was done).
		m.sent = false
		m.retryAt = time.Now().Add(max(50*time.Millisecond, time.Duration(f.RetryAfterMS)*time.Millisecond))
	default:
		w.refused++
		delete(w.pending, id)
	}
}
