package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Hub knows this instance's sessions by user ([registry]). It hands each
// change event, encoded once, to the sessions of its user: an inline
// event (carried by its notification) at once, the others after a batched
// log read; broker messages reach the same sessions through the relay
// (relay.go), and presence (presence.go) keeps the user's devices listed in
// the broker.
//
// Cost grows with a user's own sessions: a notification for a user with no
// session here is dropped without touching the database or decoding it.
//
// [Hub.Run] owns every background goroutine of the hub: the fetch loop, the
// broker's delivery loop, the presence loop and, with reminders, the
// reminder loop (reminders.go). Nothing runs before Run, and Run returns
// only once all of them have stopped. Events are dispatched by the fetch
// loop and, for inline events, by the listener's goroutine, one at a time
// (dmu), each only if it follows the user's cursor: each user's events
// leave the hub in sequence order, once.
type Hub struct {
	logger   *slog.Logger
	changes  changeReader
	broker   Broker
	metrics  *Metrics
	instance string
	reg      registry
	presence *presence
	relay    relay

	pmu     sync.Mutex
	pending map[string]struct{}
	wake    chan struct{}

	// dmu serialises dispatch: the fetch loop (events read from the log)
	// and the listener (inline events) both dispatch, and each checks and
	// moves a feed's cursor and hands the event to the sessions under it,
	// so every user's events leave the hub in seq order, once.
	dmu sync.Mutex

	// reminders, when not nil, is where fired reminders are read
	// (reminders.go); rq is the work of the reminder loop.
	reminders reminderReader
	rq        reminderQueue
}

// changeReader is what the hub and sessions read from the change log
// (*ChangeLog; a fake in tests).
type changeReader interface {
	CurrentSeq(ctx context.Context, userID string) (int64, error)
	Read(ctx context.Context, userID string, after, upTo int64, limit int) ([]*Event, error)
	ReadAfter(ctx context.Context, cursors map[string]int64, perUser int) ([]*Event, error)
	// The batched forms of CurrentSeq and Read, for the catch-up reads of
	// many sessions at once (catchup.go).
	CurrentSeqs(ctx context.Context, users []string) (map[string]int64, error)
	ReadRanges(ctx context.Context, ranges []logRange, limit int) ([][]*Event, error)
}

// HubConfig holds what a Hub needs.
type HubConfig struct {
	Logger   *slog.Logger
	Changes  *ChangeLog
	Broker   Broker
	Metrics  *Metrics
	Instance string
	// PresenceTTL is how long a presence entry lives without a heartbeat
	// (DefaultPresenceTTL when 0; heartbeats run every third of it).
	PresenceTTL time.Duration
	// Reminders, if not nil, delivers fired reminders to this instance's
	// sessions (reminders.go); the Listener must then also handle
	// ReminderChannel with [Hub.ReminderHandler].
	Reminders *ReminderLog
}

// NewHub returns a Hub; nothing runs until [Hub.Run].
func NewHub(cfg HubConfig) *Hub {
	var changes changeReader
	if cfg.Changes != nil {
		changes = cfg.Changes
	}
	h := newHub(cfg, changes)
	if cfg.Reminders != nil {
		h.reminders = cfg.Reminders
	}
	return h
}

func newHub(cfg HubConfig, changes changeReader) *Hub {
	h := &Hub{
		logger: cfg.Logger, changes: changes, broker: cfg.Broker, metrics: cfg.Metrics,
		instance: cfg.Instance, pending: map[string]struct{}{}, wake: make(chan struct{}, 1),
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.metrics == nil {
		h.metrics = NewMetrics(nil)
	}
	if h.broker == nil {
		h.broker = NewMemoryBroker()
	}
	h.reg.init()
	h.rq.init()
	h.relay = relay{hub: h}
	h.presence = newPresence(h, cfg.PresenceTTL)
	return h
}

// Run runs the hub's loops until ctx ends: the fetch loop, the broker's
// delivery and the presence heartbeat. It returns ctx's error once every
// goroutine it started has stopped, or the first loop's failure.
func (h *Hub) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.fetchLoop(ctx) })
	g.Go(func() error { return h.relay.run(ctx) })
	g.Go(func() error { return h.presence.run(ctx) })
	if h.reminders != nil {
		g.Go(func() error { return h.reminderLoop(ctx) })
	}
	return g.Wait()
}

// SessionCount returns the number of sessions of user on this instance.
func (h *Hub) SessionCount(user string) int {
	list, _ := h.reg.get(user)
	return len(list)
}

// register adds s to its user's feed, unless the user already has max
// sessions here. A new feed's cursor starts at the session's own.
func (h *Hub) register(s *session, max int) error {
	if err := h.reg.add(s, max); err != nil {
		return err
	}
	// Idempotent: the first session of the user subscribes, later ones get
	// the same readiness.
	s.brokerReady = h.broker.Subscribe(s.userID)
	h.metrics.socketsOpen.Inc()
	// Events committed between reading the session's start seq and now may
	// have been notified before the feed existed: look once.
	h.poke(s.userID)
	return nil
}

// unregister removes s; the last session of a user removes the feed and
// the broker subscription.
func (h *Hub) unregister(s *session) {
	removed, last := h.reg.remove(s)
	if !removed {
		return
	}
	if last {
		h.broker.Unsubscribe(s.userID)
	}
	h.metrics.socketsOpen.Dec()
}

// notify is called for each pointer notification.
func (h *Hub) notify(user string, seq int64) {
	_, f := h.reg.get(user)
	switch {
	case f == nil:
		h.metrics.notifications.WithLabelValues("pointer", "no_session").Inc()
	case seq <= f.cursor.Load():
		h.metrics.notifications.WithLabelValues("pointer", "stale").Inc()
	default:
		h.metrics.notifications.WithLabelValues("pointer", "read_log").Inc()
		h.poke(user)
	}
}

// notifyInline is called for each notification that carries its event
// (body, decoded only if a session here wants it; see [NotifyChannel]).
// The event that follows the user's last dispatched one is dispatched at
// once, on the caller's goroutine; an older one is dropped (a duplicate);
// a newer one means notifications were lost or reordered, and the log is
// read from the cursor on, this event included.
func (h *Hub) notifyInline(user string, seq int64, body string) {
	_, f := h.reg.get(user)
	if f == nil {
		h.metrics.notifications.WithLabelValues("inline", "no_session").Inc()
		return
	}
	if cur := f.cursor.Load(); seq <= cur {
		h.metrics.notifications.WithLabelValues("inline", "stale").Inc()
		return
	} else if seq > cur+1 {
		h.metrics.notifications.WithLabelValues("inline", "read_log").Inc()
		h.poke(user)
		return
	}
	ev, err := decodeInline(user, seq, body)
	if err != nil {
		// Our own trigger wrote it: a bug, but the log has the event.
		h.logger.Error("hub: undecodable inline event; reading the change log instead", "err", err)
		h.metrics.notifications.WithLabelValues("inline", "read_log").Inc()
		h.poke(user)
		return
	}
	result := h.dispatchInline(ev)
	h.metrics.notifications.WithLabelValues("inline", result).Inc()
	if result == "read_log" {
		h.poke(user)
	}
}

// dispatchInline hands ev to its user's sessions if it follows the user's
// cursor, and says what it did (a metrics label). A panic (a bug) is
// logged and the log read instead, as in [Hub.fetch].
func (h *Hub) dispatchInline(ev *Event) (result string) {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			h.logger.Error("hub: panic while dispatching an inline event; reading the change log instead", "panic", v, "stack", string(debug.Stack()))
			result = "read_log"
		}
	}()
	// Check again: the fetch loop may have dispatched meanwhile, or the
	// user's last session gone (and another come, with a new feed).
	list, f := h.reg.get(ev.UserID)
	switch {
	case f == nil:
		return "no_session"
	case ev.Seq <= f.cursor.Load():
		return "stale"
	case ev.Seq > f.cursor.Load()+1:
		return "read_log"
	}
	f.cursor.Store(ev.Seq)
	h.metrics.deliveryLatency.Observe(time.Since(ev.CreatedAt).Seconds())
	for _, s := range list {
		s.deliver(ev)
	}
	h.metrics.eventsFanned.Add(float64(len(list)))
	return "dispatched"
}

// poke schedules a log read for user.
func (h *Hub) poke(user string) {
	h.pmu.Lock()
	h.pending[user] = struct{}{}
	h.pmu.Unlock()
	signal(h.wake)
}

// pokeAll schedules a log read for every user with a session here; the
// listener calls it after every (re)connect, so that notifications missed
// while it was away lose nothing.
func (h *Hub) pokeAll() {
	h.pmu.Lock()
	h.reg.each(func(user string, _ []*session) { h.pending[user] = struct{}{} })
	h.pmu.Unlock()
	signal(h.wake)
}

// fetchPerUser bounds one user's events per read; a user with more is read
// again at once.
const fetchPerUser = 500

// fetchTimeout bounds one batched read of the log.
const fetchTimeout = 10 * time.Second

// fetchLoop waits for pokes, reads the log once for every poked user
// (notifications that arrive during a read are coalesced into the next
// one), and dispatches. It returns when ctx is done.
func (h *Hub) fetchLoop(ctx context.Context) error {
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
				if _, f := h.reg.get(u); f != nil {
					cursors[u] = f.cursor.Load()
				}
			}
			if len(cursors) == 0 {
				continue
			}
			if err := h.fetch(ctx, cursors); err != nil {
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
		}
	}
}

// fetch reads and dispatches one batch. A panic (a bug) is logged and
// reported as an error, so that one bad event cannot stop fan-out for
// everyone: the batch is retried after a backoff, and the sessions it
// concerns catch up from the log.
func (h *Hub) fetch(ctx context.Context, cursors map[string]int64) (err error) {
	defer func() {
		if v := recover(); v != nil {
			h.logger.Error("hub: panic while dispatching; continuing", "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	events, err := h.read(rctx, cursors)
	cancel()
	if err != nil {
		return err
	}
	h.metrics.logReads.Inc()
	h.dispatch(events)
	return nil
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

// dispatch hands events read from the log (grouped by user, in seq
// order, gap-free from the cursor the read started at) to the sessions,
// skipping those dispatched meanwhile.
func (h *Hub) dispatch(events []*Event) {
	h.dmu.Lock()
	defer h.dmu.Unlock()
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
		list, f := h.reg.get(user)
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
	list, _ := h.reg.get(user)
	for _, s := range list {
		s.send(frame)
	}
}

// closeUser closes every session of user on this instance.
func (h *Hub) closeUser(user string, d Disconnect) {
	list, _ := h.reg.get(user)
	for _, s := range list {
		s.close(d)
	}
}

// closeAll closes every session on this instance.
func (h *Hub) closeAll(d Disconnect) {
	h.reg.each(func(_ string, sessions []*session) {
		for _, s := range sessions {
			s.close(d)
		}
	})
}
