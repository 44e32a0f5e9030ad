package realtime

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const numShards = 64

// Hub knows this instance's sessions by user. It turns change-log
// notifications into batched log reads and hands each event, encoded once,
// to the sessions of its user; it relays broker messages (presence, chat
// streams, session control) the same way.
//
// Cost grows with a user's own sessions: a notification for a user with no
// session here is dropped without touching the database.
//
// The fetch loop ([Hub.Run]) is the only goroutine that dispatches events,
// so each user's events leave the hub in sequence order.
type Hub struct {
	logger  *slog.Logger
	changes *ChangeLog
	broker  Broker
	metrics *Metrics
	// Instance names this server in presence entries and logs.
	instance    string
	presenceTTL time.Duration
	brokerDown  atomic.Bool
	// announces throttles presence frames per user (presence.go).
	amu       sync.Mutex
	announces map[string]*announceState
	// signalHandler receives SignalUser payloads (see OnSignal).
	signalHandler atomic.Pointer[func(user string, payload []byte)]

	seed   maphash.Seed
	shards [numShards]shard

	pmu     sync.Mutex
	pending map[string]struct{}
	wake    chan struct{}

	// life guards closing and active: register refuses new sessions once
	// Shutdown began, and Shutdown waits for active to reach zero.
	life    sync.Mutex
	closing bool
	active  int
	drained chan struct{}
}

type shard struct {
	mu    sync.RWMutex
	feeds map[string]*feed
}

// feed is one user's presence on this instance.
type feed struct {
	// cursor is the last seq the hub dispatched for the user; written by
	// the fetch loop only.
	cursor atomic.Int64
	// sessions is copy-on-write: replaced (never modified) under the shard
	// lock, so dispatch iterates it without holding the lock.
	sessions []*session
}

// HubConfig holds what a Hub needs.
type HubConfig struct {
	Logger   *slog.Logger
	Changes  *ChangeLog
	Broker   Broker
	Metrics  *Metrics
	Instance string
	// PresenceTTL is how long a presence entry lives without a heartbeat
	// (default 60s; heartbeats run every third of it).
	PresenceTTL time.Duration
}

// NewHub returns a Hub; nothing runs until [Hub.Run].
func NewHub(cfg HubConfig) *Hub {
	h := &Hub{
		logger: cfg.Logger, changes: cfg.Changes, broker: cfg.Broker, metrics: cfg.Metrics,
		instance: cfg.Instance, presenceTTL: cfg.PresenceTTL, seed: maphash.MakeSeed(),
		pending: map[string]struct{}{}, wake: make(chan struct{}, 1), announces: map[string]*announceState{},
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.presenceTTL <= 0 {
		h.presenceTTL = time.Minute
	}
	if h.metrics == nil {
		h.metrics = NewMetrics(nil)
	}
	for i := range h.shards {
		h.shards[i].feeds = map[string]*feed{}
	}
	return h
}

func (h *Hub) shard(user string) *shard {
	return &h.shards[maphash.String(h.seed, user)%numShards]
}

var errTooManySockets = errors.New("too many sockets for this user")

// register adds s to its user's feed; startSeq initialises a new feed's
// cursor. It fails when the user already has max sessions here. ready is
// closed once the user's broker subscription is in effect.
func (h *Hub) register(s *session, startSeq int64, max int) (ready <-chan struct{}, err error) {
	h.life.Lock()
	if h.closing {
		h.life.Unlock()
		return nil, errShuttingDown
	}
	h.active++
	h.life.Unlock()

	sh := h.shard(s.userID)
	sh.mu.Lock()
	f := sh.feeds[s.userID]
	if f == nil {
		f = &feed{}
		f.cursor.Store(startSeq)
		sh.feeds[s.userID] = f
	}
	if max > 0 && len(f.sessions) >= max {
		sh.mu.Unlock()
		h.release()
		return nil, errTooManySockets
	}
	// Idempotent: the first session of the user subscribes, later ones get
	// the same readiness.
	ready = h.broker.Subscribe(s.userID)
	next := make([]*session, len(f.sessions), len(f.sessions)+1)
	copy(next, f.sessions)
	f.sessions = append(next, s)
	sh.mu.Unlock()
	h.metrics.socketsOpen.Inc()
	// Events committed between reading startSeq and now may have been
	// notified before the feed existed: look once.
	h.poke(s.userID)
	return ready, nil
}

// unregister removes s; the last session of a user removes the feed.
func (h *Hub) unregister(s *session) {
	sh := h.shard(s.userID)
	sh.mu.Lock()
	f := sh.feeds[s.userID]
	if f == nil {
		sh.mu.Unlock()
		return
	}
	next := make([]*session, 0, len(f.sessions))
	for _, o := range f.sessions {
		if o != s {
			next = append(next, o)
		}
	}
	if len(next) == len(f.sessions) {
		sh.mu.Unlock()
		return
	}
	if len(next) == 0 {
		delete(sh.feeds, s.userID)
		h.broker.Unsubscribe(s.userID)
	} else {
		f.sessions = next
	}
	sh.mu.Unlock()
	h.metrics.socketsOpen.Dec()
	h.release()
}

// release counts a session out and wakes Shutdown after the last one.
func (h *Hub) release() {
	h.life.Lock()
	h.active--
	if h.closing && h.active == 0 && h.drained != nil {
		close(h.drained)
		h.drained = nil
	}
	h.life.Unlock()
}

// userSessions returns the user's sessions on this instance (do not modify).
func (h *Hub) userSessions(user string) ([]*session, *feed) {
	sh := h.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	f := sh.feeds[user]
	if f == nil {
		return nil, nil
	}
	return f.sessions, f
}

// SessionCount returns the number of sessions of user on this instance.
func (h *Hub) SessionCount(user string) int {
	list, _ := h.userSessions(user)
	return len(list)
}

// notify is called for each change-log notification.
func (h *Hub) notify(user string, seq int64) {
	_, f := h.userSessions(user)
	if f == nil || seq <= f.cursor.Load() {
		return
	}
	h.poke(user)
}

// poke schedules a log read for user.
func (h *Hub) poke(user string) {
	h.pmu.Lock()
	h.pending[user] = struct{}{}
	h.pmu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// pokeAll schedules a log read for every user with a session here; the
// listener calls it after every (re)connect, so that notifications missed
// while it was away lose nothing.
func (h *Hub) pokeAll() {
	h.pmu.Lock()
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for u := range sh.feeds {
			h.pending[u] = struct{}{}
		}
		sh.mu.RUnlock()
	}
	h.pmu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// fetchPerUser bounds one user's events per read; a user with more is read
// again at once.
const fetchPerUser = 500

// Run is the fetch loop: it waits for pokes, reads the log once for every
// poked user (notifications that arrive during a read are coalesced into
// the next one), and dispatches. It returns when ctx is done.
func (h *Hub) Run(ctx context.Context) error {
	backoff := newBackoff(50*time.Millisecond, 5*time.Second)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.wake:
		}
		for {
			h.pmu.Lock()
			batch := h.pending
			if len(batch) == 0 {
				h.pmu.Unlock()
				break
			}
			h.pending = make(map[string]struct{}, len(batch))
			h.pmu.Unlock()

			cursors := make(map[string]int64, len(batch))
			for u := range batch {
				if _, f := h.userSessions(u); f != nil {
					cursors[u] = f.cursor.Load()
				}
			}
			if len(cursors) == 0 {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			events, err := h.read(rctx, cursors)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				h.logger.Warn("read change log; will retry", "err", err, "users", len(cursors))
				for u := range cursors {
					h.poke(u)
				}
				if !backoff.wait(ctx) {
					return ctx.Err()
				}
				continue
			}
			backoff.reset()
			h.metrics.logReads.Inc()
			h.dispatch(events)
		}
	}
}

// read reads the log after each user's cursor: with one user (the common
// case at low load) a plain indexed range scan, cheaper to run than the
// batched form.
func (h *Hub) read(ctx context.Context, cursors map[string]int64) ([]*Event, error) {
	if len(cursors) == 1 {
		for user, after := range cursors {
			return h.changes.Read(ctx, user, after, math.MaxInt64, fetchPerUser)
		}
	}
	return h.changes.ReadAfter(ctx, cursors, fetchPerUser)
}

// dispatch hands events (grouped by user, in seq order) to the sessions.
func (h *Hub) dispatch(events []*Event) {
	count := 0
	for i := 0; i < len(events); {
		user := events[i].UserID
		j := i
		for j < len(events) && events[j].UserID == user {
			j++
		}
		if j-i == fetchPerUser {
			h.poke(user) // there may be more
		}
		list, f := h.userSessions(user)
		if f != nil {
			now := time.Now()
			for _, ev := range events[i:j] {
				if ev.Seq <= f.cursor.Load() {
					continue
				}
				f.cursor.Store(ev.Seq)
				h.metrics.deliveryLatency.Observe(now.Sub(ev.CreatedAt).Seconds())
				for _, s := range list {
					s.deliver(ev)
				}
				count += len(list)
			}
		}
		i = j
	}
	h.metrics.eventsFanned.Add(float64(count))
}

// sendUser queues a frame on every session of user on this instance.
func (h *Hub) sendUser(user string, frame []byte) {
	list, _ := h.userSessions(user)
	for _, s := range list {
		s.send(frame)
	}
}

// CloseLocal closes every session of user on this instance only, for
// signals that reach every instance by themselves (a revocation's NOTIFY);
// CloseUser goes through the broker. It never blocks.
func (h *Hub) CloseLocal(user string, code websocket.StatusCode, reason string) {
	h.closeUser(user, code, reason)
}

// closeUser closes every session of user on this instance.
func (h *Hub) closeUser(user string, code websocket.StatusCode, reason string) {
	list, _ := h.userSessions(user)
	for _, s := range list {
		s.close(code, reason)
	}
}

// Shutdown closes every session with 1001 (going away: reconnect to
// another instance) and waits until they are gone or ctx is done. New
// sockets are refused from the first call.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.life.Lock()
	h.closing = true
	drained := make(chan struct{})
	if h.active == 0 {
		close(drained)
	} else {
		h.drained = drained
	}
	h.life.Unlock()

	h.eachUser(func(_ string, sessions []*session) {
		for _, s := range sessions {
			s.close(CloseGoingAway, "server shutting down; reconnect")
		}
	})
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// eachUser calls fn for every user with a session here.
func (h *Hub) eachUser(fn func(user string, sessions []*session)) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		type entry struct {
			u string
			s []*session
		}
		list := make([]entry, 0, len(sh.feeds))
		for u, f := range sh.feeds {
			list = append(list, entry{u, f.sessions})
		}
		sh.mu.RUnlock()
		for _, e := range list {
			fn(e.u, e.s)
		}
	}
}
