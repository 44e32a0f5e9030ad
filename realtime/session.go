package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"tasksync/tasks"
)

var errShuttingDown = errors.New("server shutting down")

// session is one authenticated socket.
//
// Goroutines: the HTTP handler goroutine reads and handles client frames
// ([Server.serveSession]); one writer goroutine ([session.writeLoop]) owns
// every write; a fill goroutine runs only while the session is catching up
// from the change log. Everything else (the hub, the broker, chat turns)
// only queues frames, never writes.
type session struct {
	id     string
	userID string
	device string
	srv    *Server
	conn   *websocket.Conn
	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc

	// Outbound queue, bounded in bytes. A frame that does not fit closes the
	// session as a slow consumer instead of blocking the sender.
	qmu         sync.Mutex
	queue       [][]byte
	qbytes      int
	closing     bool
	closeCode   websocket.StatusCode
	closeReason string
	wake        chan struct{} // frames queued or close requested
	space       chan struct{} // the writer drained the queue

	// Event stream state: cursor is the last seq queued to the client,
	// known the highest seq known to exist. While filling, events come from
	// the change log (fill goroutine) and live deliveries only raise known.
	smu     sync.Mutex
	cursor  int64
	known   int64
	filling bool
	syncReq *syncRequest
	synced  []json.RawMessage // ids of sync requests to answer when caught up

	expiresAt atomic.Int64  // token expiry, unix nanoseconds; 0 = none
	limiter   *rate.Limiter // client frames; used by the reader only
	presence  PresenceEntry
}

type syncRequest struct {
	id    json.RawMessage
	since int64
}

func (s *session) init(ctx context.Context, startSeq int64, exp time.Time) {
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wake = make(chan struct{}, 1)
	s.space = make(chan struct{}, 1)
	s.cursor, s.known = startSeq, startSeq
	if !exp.IsZero() {
		s.expiresAt.Store(exp.UnixNano())
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// send queues a frame without blocking. A frame that does not fit closes
// the session as a slow consumer (4008): replies, presence and chat frames
// cannot be fetched again later. It reports whether the frame was queued.
func (s *session) send(frame []byte) bool {
	switch s.trySend(frame) {
	case queued:
		return true
	case queueFull:
		s.srv.metrics.slowConsumers.Inc()
		s.close(CloseSlowConsumer, "send queue overflow: reconnect with since")
	}
	return false
}

type sendResult int

const (
	queued sendResult = iota
	queueFull
	queueClosed
)

// trySend queues a frame if it fits, and never closes the session.
func (s *session) trySend(frame []byte) sendResult {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return queueClosed
	}
	if s.qbytes > 0 && s.qbytes+len(frame) > s.srv.cfg.SendQueueBytes {
		s.qmu.Unlock()
		return queueFull
	}
	s.queue = append(s.queue, frame)
	s.qbytes += len(frame)
	s.qmu.Unlock()
	signal(s.wake)
	return queued
}

// sendWait queues a frame, waiting while the queue is more than half full.
// Only the fill goroutine uses it: a replay of a long backlog paces itself
// to the client instead of overflowing the queue.
func (s *session) sendWait(frame []byte) bool {
	for {
		s.qmu.Lock()
		if s.closing {
			s.qmu.Unlock()
			return false
		}
		if s.qbytes == 0 || s.qbytes+len(frame) <= s.srv.cfg.SendQueueBytes/2 {
			s.queue = append(s.queue, frame)
			s.qbytes += len(frame)
			s.qmu.Unlock()
			signal(s.wake)
			return true
		}
		s.qmu.Unlock()
		select {
		case <-s.space:
		case <-s.ctx.Done():
			return false
		}
	}
}

// close asks the writer to flush what is queued and close the socket with
// code. The first call wins; it never blocks.
func (s *session) close(code websocket.StatusCode, reason string) {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return
	}
	s.closing = true
	s.closeCode, s.closeReason = code, reason
	if code == CloseSlowConsumer {
		// The client cannot keep up: do not make it read the backlog first.
		s.queue, s.qbytes = nil, 0
	}
	s.qmu.Unlock()
	signal(s.wake)
}

func (s *session) isClosing() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.closing
}

// take empties the queue for the writer, handing the queue the slice the
// writer finished with (spare) so that a busy socket does not allocate a
// new queue after every wake-up.
func (s *session) take(spare [][]byte) (frames [][]byte, closing bool, code websocket.StatusCode, reason string) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	frames, s.queue, s.qbytes = s.queue, spare, 0
	return frames, s.closing, s.closeCode, s.closeReason
}

// writeLoop is the only writer of the socket. It returns when the socket is
// closed by either side.
func (s *session) writeLoop() {
	defer s.cancel()
	cfg := &s.srv.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	// The expiry timer fires at the token's expiry; if auth.refresh moved
	// the expiry meanwhile it is re-armed instead of closing the socket.
	var expiry *time.Timer
	var expiryC <-chan time.Time
	if exp := s.expiresAt.Load(); exp != 0 {
		expiry = time.NewTimer(time.Until(time.Unix(0, exp)))
		defer expiry.Stop()
		expiryC = expiry.C
	}
	var spare [][]byte
	for {
		select {
		case <-s.wake:
			frames, closing, code, reason := s.take(spare)
			w := frameWriter{s: s}
			for _, f := range frames {
				s.srv.metrics.countOut(f)
				if err := w.write(f); err != nil {
					w.done()
					if errors.Is(err, context.DeadlineExceeded) {
						// The peer stopped reading: the kernel buffers
						// are full and a close frame could not get through
						// either. Drop it; it resumes with since.
						s.srv.metrics.slowConsumers.Inc()
						s.srv.metrics.closes.WithLabelValues("4008").Inc()
					}
					s.conn.CloseNow()
					return
				}
			}
			w.done()
			clear(frames) // drop the references; keep the capacity
			spare = frames[:0]
			signal(s.space)
			if closing {
				_ = s.conn.Close(code, reason)
				return
			}
		case <-ping.C:
			go s.ping()
		case <-expiryC:
			exp := s.expiresAt.Load()
			if exp == 0 {
				continue // refreshed with a token that does not expire
			}
			if time.Now().UnixNano() < exp {
				expiry.Reset(time.Until(time.Unix(0, exp)))
				continue
			}
			s.close(CloseUnauthorized, "token expired: reconnect with a new token")
		case <-s.ctx.Done():
			return
		}
	}
}

// frameWriter writes one wake-up's frames. It shares one deadline context
// among them, renewed once half of WriteTimeout has passed, so that a write
// never gets less than half the timeout and a burst does not pay for a
// timer per frame; a peer that accepts nothing for WriteTimeout is still
// dropped.
type frameWriter struct {
	s      *session
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time
}

func (w *frameWriter) write(frame []byte) error {
	timeout := w.s.srv.cfg.WriteTimeout
	if w.ctx == nil || time.Since(w.start) > timeout/2 {
		w.done()
		w.start = time.Now()
		w.ctx, w.cancel = context.WithTimeout(w.s.ctx, timeout)
	}
	err := w.s.conn.Write(w.ctx, websocket.MessageText, frame)
	if err != nil && w.ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("write: %w", context.DeadlineExceeded)
	}
	return err
}

func (w *frameWriter) done() {
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// ping checks the peer; no pong within PongTimeout drops the socket.
func (s *session) ping() {
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.PongTimeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil && s.ctx.Err() == nil {
		s.srv.logger.Debug("socket: no pong; dropping", "session", s.id)
		s.conn.CloseNow()
	}
}

// deliver is called by the hub, in seq order, for each event of the user.
// It never blocks: in order events are queued, duplicates dropped, and a
// gap (this session is behind the hub) starts a fill from the log.
func (s *session) deliver(ev *Event) {
	s.smu.Lock()
	if ev.Seq > s.known {
		s.known = ev.Seq
	}
	switch {
	case s.filling, ev.Seq <= s.cursor:
		s.smu.Unlock()
	case ev.Seq == s.cursor+1:
		// Under smu: nothing can be queued between the check and the send.
		switch s.trySend(ev.Frame()) {
		case queued:
			s.cursor = ev.Seq
			s.smu.Unlock()
		case queueFull:
			// Behind, but events are durable: stop taking live events and
			// let the fill goroutine feed this socket from the log at the
			// pace it reads. Nobody else waits for it.
			s.filling = true
			s.smu.Unlock()
			s.srv.metrics.lagging.Inc()
			go s.fill()
		default:
			s.smu.Unlock()
		}
	default:
		s.filling = true
		s.smu.Unlock()
		go s.fill()
	}
}

// requestSync restarts the event stream after since (client sync frame or
// ?since= on connect). The reply (synced or snapshot) carries id.
func (s *session) requestSync(id json.RawMessage, since int64) {
	s.smu.Lock()
	s.syncReq = &syncRequest{id: id, since: since}
	start := !s.filling
	s.filling = true
	s.smu.Unlock()
	if start {
		go s.fill()
	}
}

// fillPage bounds one log read of a catching-up session.
const fillPage = 256

// fill brings the session from cursor up to known (and whatever arrives
// meanwhile) from the change log, then hands the stream back to live
// delivery. Exactly one fill runs per session at a time (the filling flag).
func (s *session) fill() {
	for {
		s.smu.Lock()
		req := s.syncReq
		s.syncReq = nil
		if req != nil {
			s.cursor = req.since
			s.synced = append(s.synced, req.id)
		}
		from, known := s.cursor, s.known
		s.smu.Unlock()

		if req != nil {
			current, err := s.srv.changes.CurrentSeq(s.ctx, s.userID)
			if err != nil {
				s.failFill(err)
				return
			}
			if req.since < 0 || req.since > current {
				// A seq this server never handed out (another database,
				// a client bug): start over from a snapshot.
				if !s.snapshot(req.id) {
					return
				}
				s.dropSyncID(req.id)
				continue
			}
			s.smu.Lock()
			if current > s.known {
				s.known = current
			}
			known = s.known
			s.smu.Unlock()
		}

		if from < known {
			events, err := s.srv.changes.Read(s.ctx, s.userID, from, known, fillPage)
			if err != nil {
				s.failFill(err)
				return
			}
			if len(events) == 0 || events[0].Seq != from+1 {
				// The events after from were pruned: a snapshot replaces
				// them (and answers the sync request that asked, if any).
				var id json.RawMessage
				if req != nil {
					id = req.id
				}
				if !s.snapshot(id) {
					return
				}
				if req != nil {
					s.dropSyncID(req.id)
				}
				continue
			}
			for _, ev := range events {
				if !s.sendWait(ev.Frame()) {
					return
				}
			}
			s.smu.Lock()
			if s.syncReq == nil {
				s.cursor = events[len(events)-1].Seq
			}
			s.smu.Unlock()
			continue
		}

		s.smu.Lock()
		if s.syncReq != nil || s.cursor < s.known {
			s.smu.Unlock()
			continue
		}
		s.filling = false
		for _, id := range s.synced {
			s.send(encode(syncedFrame{Type: TypeSynced, ID: id, Seq: s.cursor}))
		}
		s.synced = nil
		s.smu.Unlock()
		return
	}
}

type syncedFrame struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Seq  int64           `json:"seq"`
}

type snapshotFrame struct {
	Type   string          `json:"type"`
	ID     json.RawMessage `json:"id,omitempty"`
	Seq    int64           `json:"seq"`
	Reason string          `json:"reason"`
	Tasks  []tasks.Task    `json:"tasks"`
}

// snapshot queues the user's whole task list and moves the cursor to the
// seq it is consistent with. It runs on the fill goroutine.
func (s *session) snapshot(id json.RawMessage) bool {
	list, seq, err := s.srv.tasks.Snapshot(s.ctx, s.userID)
	if err != nil {
		s.failFill(err)
		return false
	}
	reason := "since is older than the retained change log"
	if id != nil {
		reason = "requested since is unknown or no longer retained"
	}
	if !s.sendWait(encode(snapshotFrame{Type: TypeSnapshot, ID: id, Seq: seq, Reason: reason, Tasks: list})) {
		return false
	}
	s.srv.metrics.snapshots.Inc()
	s.smu.Lock()
	if s.syncReq == nil {
		s.cursor = seq
		if seq > s.known {
			s.known = seq
		}
	}
	s.smu.Unlock()
	return true
}

// dropSyncID removes id from the pending synced replies: a snapshot already
// answered it.
func (s *session) dropSyncID(id json.RawMessage) {
	s.smu.Lock()
	defer s.smu.Unlock()
	for i, x := range s.synced {
		if string(x) == string(id) {
			s.synced = append(s.synced[:i], s.synced[i+1:]...)
			return
		}
	}
}

func (s *session) failFill(err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.srv.logger.Error("socket: catch-up from the change log failed", "session", s.id, "err", err)
	s.close(CloseInternal, "could not read the change log; reconnect")
}
