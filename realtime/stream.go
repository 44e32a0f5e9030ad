package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"tasksync"
	"tasksync/tasks"
)

// stream is a session's event stream: which change events it has queued
// and how it catches up. Live events come from the hub ([session.deliver]);
// while the session is behind, or answering a sync, the fill goroutine
// feeds it from the change log (or a snapshot) instead, and live
// deliveries only raise known.
type stream struct {
	smu     sync.Mutex
	cursor  int64 // last seq queued to the client
	known   int64 // highest seq known to exist
	filling bool  // a fill goroutine owns cursor
	stopped bool  // the session is being torn down: start no fill
	syncReq *syncRequest
	synced  []json.RawMessage // ids of sync requests to answer when caught up
}

type syncRequest struct {
	id    json.RawMessage
	since int64
	// silent: nobody asked, nobody is answered (the catch-up check of a
	// new session).
	silent bool
}

// Paging and bounds of catch-up work.
const (
	// fillPage bounds one change-log read of a catching-up session.
	fillPage = 256
	// snapshotPageTasks and snapshotFrameBytes bound one snapshot frame;
	// a snapshot is read from Postgres snapshotPageTasks rows at a time, at
	// the pace the socket drains.
	snapshotPageTasks  = 500
	snapshotFrameBytes = 256 << 10
	// readTimeout bounds one change-log read of the fill goroutine.
	readTimeout = 10 * time.Second
	// fillAttempts is how many failed reads in a row a fill survives
	// (backing off in between) before it closes the socket with 1011.
	fillAttempts = 5
)

// deliver is called by the hub, in seq order, for each event of the user.
// It never blocks: in-order events are queued, duplicates dropped, and a
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
			start := s.beginFill()
			s.smu.Unlock()
			s.srv.metrics.lagging.Inc()
			start()
		default:
			s.smu.Unlock()
		}
	default:
		start := s.beginFill()
		s.smu.Unlock()
		start()
	}
}

// beginFill, called with smu held and filling false, makes the session
// filling and returns what starts the fill goroutine, to be called once
// smu is released. The goroutine is counted in wg under smu, so that it is
// either counted before the teardown waits for wg, or not started at all
// (the hub may still deliver to a session it has just unregistered).
func (s *session) beginFill() (start func()) {
	s.filling = true
	if s.stopped {
		return func() {}
	}
	s.wg.Add(1)
	return func() {
		go func() {
			defer s.wg.Done()
			s.fill()
		}()
	}
}

// stop makes sure no fill starts from now on; the teardown calls it before
// it waits for the session's goroutines.
func (s *session) stop() {
	s.smu.Lock()
	s.stopped = true
	s.smu.Unlock()
}

// requestSync restarts the event stream after since (a client sync
// frame). The answer (synced or a snapshot) carries id.
func (s *session) requestSync(id json.RawMessage, since int64) {
	s.restart(&syncRequest{id: id, since: since})
}

// prepare sets the session up to answer req from its first delivery on,
// before it is registered: live events only raise known until the fill
// goroutine, started by [session.startFill] once registered, is done.
func (s *session) prepare(req *syncRequest) {
	s.smu.Lock()
	s.syncReq = req
	s.filling = true
	s.smu.Unlock()
}

// startFill starts the fill goroutine that prepare set up.
func (s *session) startFill() { s.wg.Go(s.fill) }

func (s *session) restart(req *syncRequest) {
	s.smu.Lock()
	s.syncReq = req
	if s.filling {
		s.smu.Unlock()
		return
	}
	start := s.beginFill()
	s.smu.Unlock()
	start()
}

// superseded reports whether a newer sync request waits.
func (s *session) superseded() bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.syncReq != nil
}

var errSuperseded = errors.New("superseded by a newer sync request")

// fill brings the session from cursor up to known (and whatever arrives
// meanwhile) from the change log, answering sync requests on the way, then
// hands the stream back to live delivery. Exactly one fill runs per session
// at a time (the filling flag).
func (s *session) fill() {
	const (
		wantNothing  = iota
		wantCheck    // validate the since of a new sync request
		wantSnapshot // send a snapshot
	)
	var (
		want     = wantNothing
		answer   *syncRequest // the sync request a snapshot would answer
		reason   string
		failures int
		retry    = newBackoff(100*time.Millisecond, 2*time.Second)
	)
	// answerLater leaves the answer to synced, once caught up.
	answerLater := func() {
		if answer != nil && !answer.silent {
			s.smu.Lock()
			s.synced = append(s.synced, answer.id)
			s.smu.Unlock()
			answer = nil
		}
	}
	for {
		s.smu.Lock()
		if req := s.syncReq; req != nil {
			s.syncReq = nil
			s.cursor = req.since
			s.smu.Unlock()
			answerLater() // a superseded request is answered with synced
			answer, want = req, wantCheck
			s.smu.Lock()
		}
		from, known := s.cursor, s.known
		s.smu.Unlock()

		var err error
		switch {
		case want == wantCheck:
			var current int64
			current, err = s.currentSeq()
			if err != nil {
				break
			}
			if from < 0 || from > current {
				// A seq this server never handed out (another database,
				// a client bug): start over from a snapshot.
				want, reason = wantSnapshot, "requested since is unknown or no longer retained"
				continue
			}
			s.raiseKnown(current)
			want = wantNothing
			continue

		case want == wantSnapshot:
			var id json.RawMessage
			if answer != nil && !answer.silent {
				id = answer.id
			}
			err = s.snapshot(id, reason)
			if err == nil {
				answer, want = nil, wantNothing
				s.srv.metrics.snapshots.Inc()
			}

		case from < known:
			var events []*Event
			events, err = s.readLog(from, known)
			if err != nil {
				break
			}
			if len(events) == 0 || events[0].Seq != from+1 {
				// The events after from were pruned: a snapshot replaces
				// them.
				want, reason = wantSnapshot, "since is older than the retained change log"
				if answer == nil {
					reason = "the events this socket missed are no longer retained"
				}
				continue
			}
			// A hole inside the page (rows pruned or deleted in the middle
			// of the range): send what comes before it; the next read
			// starts at the hole and finds it (above). Seqs have no gaps
			// otherwise, so an event is never skipped silently.
			for i := 1; i < len(events); i++ {
				if events[i].Seq != events[i-1].Seq+1 {
					events = events[:i]
					break
				}
			}
			answerLater() // the replay answers it: synced, once caught up
			frames := make([][]byte, len(events))
			for i, ev := range events {
				frames[i] = ev.Frame()
			}
			err = s.sendWait(s.ctx, frames...)
			if err == nil {
				s.smu.Lock()
				if s.syncReq == nil {
					s.cursor = events[len(events)-1].Seq
				}
				s.smu.Unlock()
			}

		default:
			s.smu.Lock()
			if s.syncReq != nil || s.cursor < s.known {
				s.smu.Unlock()
				continue
			}
			if answer != nil && !answer.silent {
				s.synced = append(s.synced, answer.id)
			}
			answer = nil
			s.filling = false
			for _, id := range s.synced {
				s.send(encode(syncedFrame{Type: TypeSynced, ID: id, Seq: s.cursor}))
			}
			s.synced = nil
			s.smu.Unlock()
			return
		}

		switch {
		case err == nil:
			failures = 0
			retry.reset()
		case errors.Is(err, errSuperseded):
			answerLater()
			want = wantNothing
		case errors.Is(err, errSessionDone) || s.ctx.Err() != nil:
			return
		case errors.Is(err, errNotRead):
			s.close(DisconnectSlow)
			return
		default:
			failures++
			if failures >= fillAttempts {
				level, _ := tasksync.LogLevel(err)
				s.srv.logger.Log(s.ctx, level, "socket: catch-up from the change log failed; closing", "session", s.id, "err", err)
				s.close(DisconnectInternal)
				return
			}
			s.srv.logger.Warn("socket: catch-up from the change log failed; retrying", "session", s.id, "err", err)
			if !retry.wait(s.ctx) {
				return
			}
		}
	}
}

func (s *session) raiseKnown(seq int64) {
	s.smu.Lock()
	if seq > s.known {
		s.known = seq
	}
	s.smu.Unlock()
}

func (s *session) currentSeq() (int64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, readTimeout)
	defer cancel()
	return s.srv.reads.currentSeq(ctx, s.userID, true)
}

func (s *session) readLog(after, upTo int64) ([]*Event, error) {
	ctx, cancel := context.WithTimeout(s.ctx, readTimeout)
	defer cancel()
	return s.srv.reads.read(ctx, s.userID, after, upTo)
}

type syncedFrame struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Seq  int64           `json:"seq"`
}

// snapshot sends the user's whole task list in pages, all consistent with
// one seq, and moves the cursor there. It holds one of the instance's
// snapshot slots while it reads, so that the number of snapshots being
// built (each holding a read transaction and a page of rows) is bounded
// whatever the clients ask. Pages are read as the socket drains: a client
// that does not read within SnapshotTimeout is closed as a slow consumer.
func (s *session) snapshot(id json.RawMessage, reason string) error {
	select {
	case s.srv.snapshotSlots <- struct{}{}:
	case <-s.ctx.Done():
		return errSessionDone
	}
	defer func() { <-s.srv.snapshotSlots }()
	if s.superseded() {
		return errSuperseded
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.SnapshotTimeout)
	defer cancel()

	p := snapshotPager{s: s, ctx: ctx, id: id, reason: reason}
	seq, err := s.srv.tasks.SnapshotPages(ctx, s.userID, snapshotPageTasks, p.add)
	if err == nil {
		err = p.finish()
	}
	if err != nil {
		return err
	}
	s.smu.Lock()
	if s.syncReq == nil {
		s.cursor = seq
		if seq > s.known {
			s.known = seq
		}
	}
	s.smu.Unlock()
	return nil
}

// snapshotPager turns the rows of a snapshot into snapshot frames of at
// most snapshotPageTasks tasks and about snapshotFrameBytes bytes each. A
// full page is sent when the next task arrives (then more is true) or at
// the end (more is false), so no row is read ahead.
type snapshotPager struct {
	s      *session
	ctx    context.Context
	id     json.RawMessage
	reason string
	seq    int64
	page   int
	items  [][]byte
	size   int
}

func (p *snapshotPager) add(seq int64, page []tasks.Task) error {
	p.seq = seq
	for i := range page {
		b, err := json.Marshal(&page[i])
		if err != nil {
			return tasksync.Errorf(tasksync.CodeInternal, "encode task: %v", err)
		}
		if len(p.items) > 0 && (len(p.items) == snapshotPageTasks || p.size+len(b) > snapshotFrameBytes) {
			if err := p.flush(true); err != nil {
				return err
			}
		}
		p.items = append(p.items, b)
		p.size += len(b) + 1
	}
	// A newer sync makes the rest of this snapshot useless: stop reading.
	if p.s.superseded() {
		return errSuperseded
	}
	return nil
}

func (p *snapshotPager) finish() error { return p.flush(false) }

// flush sends the collected tasks as one snapshot frame. Field order keeps
// "type" first (the frames-out metric reads it from the prefix).
func (p *snapshotPager) flush(more bool) error {
	var b bytes.Buffer
	b.Grow(p.size + 256)
	b.WriteString(`{"type":"snapshot"`)
	if p.id != nil {
		b.WriteString(`,"id":`)
		b.Write(p.id)
	}
	b.WriteString(`,"seq":`)
	b.WriteString(strconv.FormatInt(p.seq, 10))
	b.WriteString(`,"page":`)
	b.WriteString(strconv.Itoa(p.page))
	if p.page == 0 {
		reason, _ := json.Marshal(p.reason)
		b.WriteString(`,"reason":`)
		b.Write(reason)
	}
	b.WriteString(`,"tasks":[`)
	for i, it := range p.items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString(`],"more":`)
	b.WriteString(strconv.FormatBool(more))
	b.WriteByte('}')
	p.page++
	clear(p.items)
	p.items, p.size = p.items[:0], 0
	return p.s.sendWait(p.ctx, b.Bytes())
}
