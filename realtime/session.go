package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// session is one authenticated socket. Its goroutines, all owned by it:
//
//   - the reader ([session.run]): reads client frames, answers the cheap
//     ones itself, hands the others to request goroutines, and when the
//     socket ends tears the session down, waiting for all the others;
//   - the writer ([session.writeLoop]): the only goroutine that writes
//     frames; it also owns the ping timer and the token expiry timer,
//     which post their duties to it ([session.post]);
//   - at most Config.MaxInFlight request goroutines ([session.serveRequest]);
//   - at most one fill goroutine ([session.fill]) while the event stream
//     catches up from the change log or sends a snapshot;
//   - at most one ping goroutine (a ping waits for its pong, which the
//     reader reads);
//   - the presence join, which waits (bounded) for the broker.
//
// Everything else (the hub, the broker relay, chat turns) only queues
// frames with send and never blocks on the session.
type session struct {
	id     string
	userID string
	srv    *Server
	conn   Conn
	// cork coalesces the writer's frames (cork.go); nil with a fake Conn.
	cork     *corkConn
	ctx      context.Context // cancelled when the session ends
	cancel   context.CancelFunc
	presence PresenceEntry
	// brokerReady is closed once the user's broker subscription is in
	// effect (chat.send waits for it, bounded, so that the turn's frames
	// reach this socket).
	brokerReady <-chan struct{}

	// Outbound queue, bounded in bytes. A frame that does not fit closes the
	// session as a slow consumer instead of blocking the sender.
	qmu        sync.Mutex
	queue      [][]byte
	qbytes     int
	closing    bool
	disconnect Disconnect    // what the writer sends once the queue is flushed
	wake       chan struct{} // frames queued, close requested, or a duty posted
	duties     atomic.Uint32 // the writer's duties besides the queue (post)
	space      chan struct{} // the writer drained the queue

	stream // the event stream's state (stream.go)

	expiresAt atomic.Int64  // token expiry, unix nanoseconds; 0 = none
	limiter   *rate.Limiter // client frames; used by the reader only
	inFlight  atomic.Int32  // request goroutines running
	pinging   atomic.Bool   // a ping is waiting for its pong
	joined    atomic.Bool   // the presence entry was recorded
	// registered: the hub accepted the session (it may have been refused
	// as one socket too many; it then only says why and closes).
	registered bool

	// endCode is the close code the session ended with, for the metrics:
	// the first of what the server sent, what it detected (a dead or stuck
	// peer) and what the peer sent.
	endMu   sync.Mutex
	endCode websocket.StatusCode
	// stuck: the writer dropped a peer that accepted nothing for
	// WriteTimeout. Written by the writer only, read after writerDone.
	stuck bool

	writerDone chan struct{}
	// batch: the client asked for several frames per message (?batch=1):
	// the writer joins a wake-up's frames, a line each, into messages of
	// up to batchBytes.
	batch bool

	wg sync.WaitGroup // request, fill, ping and join goroutines

	// reminded holds the ids of the reminders this session was sent, so
	// that it gets each once (reminders.go).
	remMu    sync.Mutex
	reminded map[int64]struct{}
}

func newSession(srv *Server, conn Conn, id, userID string, startSeq int64, exp time.Time) *session {
	s := &session{
		id: id, userID: userID, srv: srv, conn: conn,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), writerDone: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(srv.cfg.FrameRate), srv.cfg.FrameBurst),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cursor, s.known = startSeq, startSeq
	if !exp.IsZero() {
		s.expiresAt.Store(exp.UnixNano())
	}
	return s
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
		s.close(DisconnectSlow)
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

var (
	// errSessionDone: the session is closing; stop working for it.
	errSessionDone = errors.New("session ended")
	// errNotRead: the client did not read a paced stream (snapshot pages)
	// before the deadline of ctx.
	errNotRead = errors.New("client did not read in time")
)

// sendWait queues frames in order, waiting while the queue is more than
// half full. Only the fill goroutine uses it: a replay or a snapshot paces
// itself to the client instead of overflowing the queue. The frames that
// fit are queued together, with one wake-up of the writer, so that a
// replay page reaches the socket as one burst (which the writer's cork
// sends in few writes). It fails with errSessionDone when the session
// ends, and errNotRead when ctx ends first.
func (s *session) sendWait(ctx context.Context, frames ...[]byte) error {
	for len(frames) > 0 {
		s.qmu.Lock()
		if s.closing {
			s.qmu.Unlock()
			return errSessionDone
		}
		n := 0
		for _, f := range frames {
			if s.qbytes > 0 && s.qbytes+len(f) > s.srv.cfg.SendQueueBytes/2 {
				break
			}
			s.queue = append(s.queue, f)
			s.qbytes += len(f)
			n++
		}
		s.qmu.Unlock()
		if n > 0 {
			frames = frames[n:]
			signal(s.wake)
			continue
		}
		select {
		case <-s.space:
		case <-s.ctx.Done():
			return errSessionDone
		case <-ctx.Done():
			return errNotRead
		}
	}
	return nil
}

// close asks the writer to flush what is queued and close the socket with
// d. The first call wins; it never blocks.
func (s *session) close(d Disconnect) {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return
	}
	s.closing = true
	s.disconnect = d
	if d.Code == CloseSlowConsumer {
		// The client cannot keep up: do not make it read the backlog first.
		s.queue, s.qbytes = nil, 0
	}
	s.qmu.Unlock()
	s.ended(d.Code)
	signal(s.wake)
}

func (s *session) isClosing() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.closing
}

// ended records why the session ends; the first call wins.
func (s *session) ended(code websocket.StatusCode) {
	s.endMu.Lock()
	if s.endCode == 0 {
		s.endCode = code
	}
	s.endMu.Unlock()
}

// take empties the queue for the writer, handing the queue the slice the
// writer finished with (spare) so that a busy socket does not allocate a
// new queue after every wake-up.
func (s *session) take(spare [][]byte) (frames [][]byte, closing bool, d Disconnect) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	frames, s.queue, s.qbytes = s.queue, spare, 0
	return frames, s.closing, s.disconnect
}

// The writer's other duties, posted to it as flags with a wake-up, so that
// it parks on one channel: a select over the queue, the ping ticker, the
// expiry timer and the session's end cost a lock of each channel on every
// wake-up, and the writer wakes once per delivered frame on a busy server
// (15% of the server's CPU in the broadcast benchmark).
const (
	wantPing   uint32 = 1 << iota // the ping interval passed
	wantExpiry                    // the token's expiry passed (as last known)
	wantStop                      // the session ended
)

// post hands the writer a duty and wakes it.
func (s *session) post(duty uint32) {
	s.duties.Or(duty)
	signal(s.wake)
}

// writeLoop is the only writer of the socket. It returns when the socket is
// closed by either side, and then cancels the session.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	defer s.cancel()
	cfg := &s.srv.cfg
	// Timers post duties instead of being selected on (see post). The
	// ping timer is re-armed when its duty is done.
	ping := time.AfterFunc(cfg.PingInterval, func() { s.post(wantPing) })
	defer ping.Stop()
	// The expiry timer fires at the token's expiry; if auth.refresh moved
	// the expiry meanwhile it is re-armed instead of closing the socket.
	var expiry *time.Timer
	if exp := s.expiresAt.Load(); exp != 0 {
		expiry = time.AfterFunc(time.Until(time.Unix(0, exp)), func() { s.post(wantExpiry) })
		defer expiry.Stop()
	}
	defer context.AfterFunc(s.ctx, func() { s.post(wantStop) })()
	if s.cork != nil {
		// The writes have no context (writeFrames): the session's end
		// closes the socket under a write in progress instead.
		defer context.AfterFunc(s.ctx, s.cork.abort)()
	}
	var spare [][]byte
	for {
		<-s.wake
		duties := s.duties.Swap(0)
		if duties&wantStop != 0 {
			return
		}
		// (Always take, even on a duty-only wake-up: take swaps spare in as
		// the queue, and spare must then be what it returned.)
		frames, closing, d := s.take(spare)
		if err := s.writeFrames(frames); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// The peer stopped reading: the kernel buffers are
				// full and a close frame could not get through
				// either. Drop it; it resumes with since. (The
				// reader may see the dropped connection first:
				// this verdict wins over what it records.)
				s.stuck = true
			}
			s.conn.CloseNow()
			return
		}
		clear(frames) // drop the references; keep the capacity
		spare = frames[:0]
		signal(s.space)
		if closing {
			_ = s.conn.Close(d.Code, d.Reason)
			return
		}
		if duties&wantPing != 0 {
			// Single flight: a ping still waiting for its pong is not
			// joined by another, whatever the interval.
			if s.pinging.CompareAndSwap(false, true) {
				s.wg.Go(s.ping)
			}
			ping.Reset(cfg.PingInterval)
		}
		if duties&wantExpiry != 0 {
			exp := s.expiresAt.Load()
			switch {
			case exp == 0:
				// refreshed with a token that does not expire
			case time.Now().UnixNano() < exp:
				expiry.Reset(time.Until(time.Unix(0, exp)))
			default:
				s.close(DisconnectExpired)
			}
		}
	}
}

// writeFrames writes one wake-up's frames. On a socket with a cork (every
// real one, cork.go) several frames are corked: they reach the kernel
// together, in as few writes as the cork's limit allows. Every kernel
// write is bounded by WriteTimeout by the cork itself, so the frames are
// written without a deadline context. A peer that accepted nothing for
// WriteTimeout is reported as context.DeadlineExceeded.
func (s *session) writeFrames(frames [][]byte) error {
	if s.cork == nil {
		w := frameWriter{s: s}
		defer w.done()
		for len(frames) > 0 {
			msg, n := s.nextMessage(frames)
			if err := w.write(msg); err != nil {
				return err
			}
			frames = frames[n:]
		}
		return nil
	}
	corked := len(frames) > 1
	if corked {
		s.cork.cork()
	}
	var err error
	for len(frames) > 0 {
		msg, n := s.nextMessage(frames)
		if err = s.conn.Write(context.Background(), websocket.MessageText, msg); err != nil {
			break
		}
		frames = frames[n:]
	}
	if corked {
		if uerr := s.cork.uncork(); err == nil {
			err = uerr
		}
	}
	if err != nil && s.cork.stuck() {
		return fmt.Errorf("write: %w", context.DeadlineExceeded)
	}
	return err
}

// batchBytes bounds a message of several frames (?batch=1); a frame
// larger than that goes alone.
const batchBytes = 64 << 10

// nextMessage returns the next message to write of frames (not empty),
// and how many frames it holds: the first frame alone, or on a batching
// socket as many frames as fit in batchBytes, one a line; the frames are
// counted as sent. (A joined message is not kept for the next: an idle
// socket holds no buffer.)
func (s *session) nextMessage(frames [][]byte) ([]byte, int) {
	n, size := 1, len(frames[0])
	if s.batch {
		for n < len(frames) && size+1+len(frames[n]) <= batchBytes {
			size += 1 + len(frames[n])
			n++
		}
	}
	for _, f := range frames[:n] {
		s.srv.metrics.countOut(f)
	}
	if n == 1 {
		return frames[0], 1
	}
	msg := make([]byte, 0, size)
	for i, f := range frames[:n] {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, f...)
	}
	return msg, n
}

// frameWriter writes one wake-up's frames on a socket without a cork (the
// package's tests' fake connections). It shares one deadline context
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
	defer s.pinging.Store(false)
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.PongTimeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil && s.ctx.Err() == nil {
		s.srv.logger.Debug("socket: no pong; dropping", "session", s.id)
		s.ended(websocket.StatusAbnormalClosure)
		s.conn.CloseNow()
	}
}

// run is the session's life on its reader goroutine: read until the socket
// ends, then tear down in order. The writer must have been started.
func (s *session) run() {
	if s.registered {
		s.wg.Go(s.join)
	}
	s.readLoop()

	// If the server asked to close, the writer is sending the close frame:
	// let it finish (its writes are bounded by WriteTimeout, Close by its
	// own handshake timeout). Otherwise the peer is gone: stop the writer.
	if !s.isClosing() {
		s.cancel()
	}
	<-s.writerDone
	s.cancel()
	// The reader starts no more requests, and after stop no delivery (the
	// hub may still hold this session in a list it is dispatching to)
	// starts a fill: wg only shrinks from here.
	s.srv.hub.unregister(s)
	s.stop()
	s.wg.Wait()
	s.conn.CloseNow()
	if s.joined.Load() {
		s.srv.hub.presence.leave(s)
	}
	s.endMu.Lock()
	code := s.endCode
	s.endMu.Unlock()
	if s.stuck {
		code = CloseSlowConsumer
	}
	s.srv.metrics.closed(code)
	s.srv.release()
}

// join records the session in presence once the user's broker subscription
// is confirmed (so that this session sees its own join), or after
// subscribeWait with the broker down: presence is then refreshed when the
// broker comes back.
func (s *session) join() {
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-s.brokerReady:
	case <-t.C:
		s.srv.logger.Warn("socket: broker subscription not confirmed in time; presence and chat streams may lag", "session", s.id)
	case <-s.ctx.Done():
		return
	}
	s.joined.Store(true) // leave removes the entry even if join failed half-way
	s.srv.hub.presence.join(s.ctx, s)
}

// waitBroker waits, at most subscribeWait, for the user's broker
// subscription (chat.send: the turn's frames come through the broker).
func (s *session) waitBroker(ctx context.Context) {
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-s.brokerReady:
	case <-t.C:
	case <-ctx.Done():
	}
}
