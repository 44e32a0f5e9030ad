package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Mutation kinds. Each one's effect can be told apart in the change log,
// so that the verification can say which acknowledged mutation is missing
// or applied twice: creates and updates set the title to the mutation_id;
// task.complete is sent without `completed`, which toggles, so that a
// second application would show as an extra flip.
const (
	kindCreate   = "create"
	kindUpdate   = "update"
	kindComplete = "complete"
	kindDelete   = "delete"
)

// pumpTick is how often a writer looks for mutations to send or resend.
const pumpTick = 20 * time.Millisecond

// mutation is one change a writer wants made exactly once. It stays
// pending, and is resent with the same mutation_id (and the same frame),
// until the server answers it with a reply or a definite refusal.
type mutation struct {
	n     int64  // request id, unique in the run
	mid   string // mutation_id (and Idempotency-Key)
	kind  string
	task  *ownedTask // the task it changes; for a create, set once acked
	title string     // create, update: the title it sets (the mutation_id)
	rest  bool       // a create sent as POST with Idempotency-Key
	frame []byte

	sentGen  int // socket generation it was last sent on; 0: to be (re)sent
	sentAt   time.Time
	retryAt  time.Time
	attempts int
	restBusy bool

	settled bool
	outcome string // "ok", or the refusal code
}

// ownedTask is a task created by this writer; only this writer changes
// it, one mutation at a time, so the order of its changes is known.
type ownedTask struct {
	id        int64
	title     string
	completed bool
	deleted   bool
	busy      bool        // a mutation of it is pending
	ops       []*mutation // acknowledged mutations, in order
	pending   *mutation
}

// writer is one user's writing device: one socket at a time (to either
// instance), up to cfg.Inflight unanswered mutations, and a small share of
// creates over REST.
type writer struct {
	h    *harness
	user string
	idx  int
	rng  *rand.Rand
	lim  *rate.Limiter

	mu       sync.Mutex
	conn     *websocket.Conn // nil until hello on a socket
	gen      int             // generation of conn
	inst     int
	restInst int
	pending  map[int64]*mutation
	live     []*ownedTask // not deleted
	tasks    map[int64]*ownedTask
	muts     []*mutation // every mutation, in creation order
	stopping bool
	restWG   sync.WaitGroup
}

func newWriter(h *harness, idx int, user string, seed int64) *writer {
	per := h.cfg.Rate / float64(h.cfg.Users)
	return &writer{
		h: h, user: user, idx: idx, inst: idx % 2, restInst: idx % 2,
		rng:     rand.New(rand.NewPCG(uint64(seed), uint64(idx))),
		lim:     rate.NewLimiter(rate.Limit(per), 1),
		pending: map[int64]*mutation{},
		tasks:   map[int64]*ownedTask{},
	}
}

// connect keeps a socket open: dial, read until it ends, and again.
func (w *writer) connect(ctx context.Context) {
	b := newBackoff()
	gen := 0
	for ctx.Err() == nil {
		conn, err := w.h.dial(ctx, w.h.instances[w.inst], w.user, noSince, "writer")
		if err != nil {
			w.inst = 1 - w.inst
			sleepCtx(ctx, b.next())
			continue
		}
		gen++
		sctx, churned, cancel := w.h.churnContext(ctx)
		code := w.read(sctx, conn, gen)
		cancel()
		w.mu.Lock()
		w.conn = nil
		for _, m := range w.pending {
			if !m.rest && m.sentGen == gen {
				m.sentGen = 0 // unanswered on a dead socket: resend on the next
			}
		}
		w.mu.Unlock()
		conn.CloseNow()
		if ctx.Err() != nil {
			return
		}
		w.inst = 1 - w.inst
		if churned() {
			w.h.churns.Add(1)
			b.reset()
			continue
		}
		w.h.closes.add("writer "+code, 1)
		if code == "1001" {
			b.reset()
			continue
		}
		sleepCtx(ctx, b.next())
	}
}

// read handles one socket's frames in order until it ends.
func (w *writer) read(ctx context.Context, conn *websocket.Conn, gen int) string {
	check := helloCheck{h: w.h, role: "writer", where: w.user + " on " + w.h.instances[w.inst].name}
	defer check.done()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return closeCode(err)
		}
		if typ != websocket.MessageText {
			w.h.anomalies.add("binary frame from the server", 1)
			continue
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			w.h.anomalies.add("undecodable frame from the server", 1)
			continue
		}
		check.see(&f)
		switch f.Type {
		case "hello":
			w.mu.Lock()
			w.conn, w.gen = conn, gen
			w.mu.Unlock()
		case "reply", "error":
			w.answer(&f)
		}
	}
}

// answer settles or reschedules the mutation a reply or error names.
func (w *writer) answer(f *frame) {
	n, ok := f.requestID()
	if !ok {
		if f.Type == "error" {
			w.h.anomalies.add("error frame without a request id: "+f.Code, 1)
		}
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.pending[n]
	if m == nil || m.rest {
		w.h.staleAnswers.Add(1)
		return
	}
	if f.Type == "reply" {
		w.settle(m, f)
		return
	}
	switch f.Code {
	case "unavailable", "internal", "rate_limited", "timeout":
		// No definite outcome: resend under the same mutation_id.
		w.h.retried.add(f.Code, 1)
		w.retryLater(m, time.Duration(f.RetryAfterMS)*time.Millisecond)
	default:
		w.refuse(m, f.Code)
	}
}

func (w *writer) retryLater(m *mutation, atLeast time.Duration) {
	d := min(100*time.Millisecond<<min(m.attempts, 5), 2*time.Second)
	d = max(d/2+rand.N(d/2+1), atLeast)
	m.sentGen, m.retryAt = 0, time.Now().Add(d)
}

// settle records a mutation's success and applies it to the model. Called
// with w.mu held.
func (w *writer) settle(m *mutation, f *frame) {
	m.settled, m.outcome = true, "ok"
	delete(w.pending, m.n)
	w.h.acked.Add(1)
	if f.Replayed {
		w.h.replayed.Add(1)
	}
	t := m.task
	switch m.kind {
	case kindCreate:
		id := f.TaskID
		if id == 0 && f.Task != nil {
			id = f.Task.ID
		}
		if id == 0 {
			w.h.anomalies.add("create acknowledged without a task id", 1)
			return
		}
		if w.tasks[id] != nil {
			w.h.anomalies.add("two creates answered with the same task id", 1)
			return
		}
		t = &ownedTask{id: id, title: m.title}
		m.task = t
		w.tasks[id] = t
		w.live = append(w.live, t)
	case kindUpdate:
		t.title = m.title
	case kindComplete:
		t.completed = !t.completed
	case kindDelete:
		t.deleted = true
		if i := slices.Index(w.live, t); i >= 0 {
			w.live = slices.Delete(w.live, i, i+1)
		}
	}
	t.ops = append(t.ops, m)
	t.busy, t.pending = false, nil
}

// refuse records a definite refusal: nothing was changed. The workload
// never asks for anything refusable, so every refusal is reported.
func (w *writer) refuse(m *mutation, code string) {
	m.settled, m.outcome = true, code
	delete(w.pending, m.n)
	w.h.refused.add(m.kind+" "+code, 1)
	if m.task != nil {
		m.task.busy, m.task.pending = false, nil
	}
}

// pump sends new mutations at the writer's rate, resends those that need
// it, and drops a socket on which a mutation has waited too long.
func (w *writer) pump(ctx context.Context) {
	t := time.NewTicker(pumpTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		now := time.Now()
		conn, gen := w.conn, w.gen
		var toSend []*mutation
		stalled := false
		for _, m := range w.pending {
			switch {
			case m.rest:
				if !m.restBusy && !now.Before(m.retryAt) {
					m.restBusy = true
					w.restWG.Add(1)
					go w.restCreate(ctx, m)
				}
			case m.sentGen == 0:
				if conn != nil && !now.Before(m.retryAt) {
					toSend = append(toSend, m)
				}
			case m.sentGen == gen && conn != nil && now.Sub(m.sentAt) > w.h.cfg.ReqTimeout:
				stalled = true
			}
		}
		if !w.stopping && len(w.pending) < w.h.cfg.Inflight && w.lim.Allow() {
			m := w.newMutation()
			w.pending[m.n] = m
			if m.rest {
				m.restBusy = true
				w.restWG.Add(1)
				go w.restCreate(ctx, m)
			} else if conn != nil {
				toSend = append(toSend, m)
			}
		}
		slices.SortFunc(toSend, func(a, b *mutation) int { return int(a.n - b.n) })
		for _, m := range toSend {
			m.sentGen, m.sentAt = gen, now
			m.attempts++
		}
		w.mu.Unlock()

		for _, m := range toSend {
			if m.attempts > 1 {
				w.h.resent.Add(1)
			}
			w.h.framesSent.Add(1)
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Write(wctx, websocket.MessageText, m.frame)
			cancel()
			if err != nil {
				break // the read loop sees the dead socket and marks these for resending
			}
		}
		if stalled {
			w.h.requestTimeouts.Add(1)
			conn.CloseNow()
		}
	}
}

// newMutation picks the next change: a create (always when there are few
// tasks), or an update, toggle or delete of a task with nothing pending.
// Called with w.mu held.
func (w *writer) newMutation() *mutation {
	n := w.h.nextN.Add(1)
	m := &mutation{n: n, mid: fmt.Sprintf("chaos-%s-w%d-%d", w.h.runTag, w.idx, n)}
	var t *ownedTask
	if len(w.live) >= 4 && w.rng.Float64() >= 0.35 {
		for range 8 {
			if c := w.live[w.rng.IntN(len(w.live))]; !c.busy {
				t = c
				break
			}
		}
	}
	if t == nil {
		m.kind, m.title = kindCreate, m.mid
		m.rest = w.rng.Float64() < w.h.cfg.RESTShare
		m.frame = fmt.Appendf(nil, `{"type":"task.create","id":%d,"mutation_id":%q,"task":{"title":%q,"description":"create","priority":"low","tags":["chaos"]}}`, n, m.mid, m.title)
	} else {
		m.task, t.busy, t.pending = t, true, m
		switch r := w.rng.Float64(); {
		case r < 0.45:
			m.kind, m.title = kindUpdate, m.mid
			m.frame = fmt.Appendf(nil, `{"type":"task.update","id":%d,"mutation_id":%q,"task_id":%d,"task":{"title":%q,"description":"update"}}`, n, m.mid, t.id, m.title)
		case r < 0.8:
			m.kind = kindComplete
			m.frame = fmt.Appendf(nil, `{"type":"task.complete","id":%d,"mutation_id":%q,"task_id":%d}`, n, m.mid, t.id)
		default:
			m.kind = kindDelete
			m.frame = fmt.Appendf(nil, `{"type":"task.delete","id":%d,"mutation_id":%q,"task_id":%d}`, n, m.mid, t.id)
		}
	}
	w.muts = append(w.muts, m)
	w.h.sent.Add(1)
	return m
}

// restCreate sends a create as POST /api/{user}/tasks with its mutation_id
// as Idempotency-Key, and settles or reschedules it.
func (w *writer) restCreate(ctx context.Context, m *mutation) {
	defer w.restWG.Done()
	w.mu.Lock()
	in := w.h.instances[w.restInst]
	m.attempts++
	attempts := m.attempts
	w.mu.Unlock()
	if attempts > 1 {
		w.h.resent.Add(1)
	}
	w.h.framesSent.Add(1)

	body := fmt.Appendf(nil, `{"title":%q,"description":"create","priority":"low","tags":["chaos"]}`, m.title)
	rctx, cancel := context.WithTimeout(ctx, w.h.cfg.ReqTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, in.httpURL()+"/api/"+w.user+"/tasks", bytes.NewReader(body))
	if err != nil {
		panic(err) // a bad URL is a bug here
	}
	req.Header.Set("Authorization", "Bearer "+w.h.tokens[w.user])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", m.mid)
	res, err := httpClient.Do(req)
	var status int
	var payload []byte
	if err == nil {
		status = res.StatusCode
		payload, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	m.restBusy = false
	if m.settled {
		return
	}
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		w.h.retried.add("rest: no answer", 1)
		w.restInst = 1 - w.restInst
		w.retryLater(m, 0)
	case status == http.StatusOK || status == http.StatusCreated:
		var t taskView
		if json.Unmarshal(payload, &t) != nil || t.ID == 0 {
			w.h.anomalies.add("REST create answered without a task", 1)
			w.retryLater(m, 0)
			return
		}
		w.settle(m, &frame{Task: &t, TaskID: t.ID, Replayed: res.Header.Get("Idempotent-Replayed") == "true"})
	case status == http.StatusTooManyRequests || status >= 500:
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(payload, &e)
		w.h.retried.add("rest "+strconv.Itoa(status)+" "+e.Error.Code, 1)
		w.restInst = 1 - w.restInst
		w.retryLater(m, 0)
	default:
		w.refuse(m, "http_"+strconv.Itoa(status))
	}
}

// pendingCount is the number of unanswered mutations.
func (w *writer) pendingCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

func (w *writer) stop() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
}
