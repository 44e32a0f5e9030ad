package realtime

import (
	"context"
	"sync"
	"time"
)

// DefaultPresenceTTL is how long a presence entry lives without a
// heartbeat when HubConfig.PresenceTTL is 0.
const DefaultPresenceTTL = time.Minute

// presence keeps the user's devices listed in the broker and tells the
// user's sessions when the list changes. It owns its throttling (a burst
// of joins and leaves becomes one frame) and its heartbeat; its run loop is
// the only goroutine it has, started by [Hub.Run].
type presence struct {
	hub *Hub
	ttl time.Duration

	mu sync.Mutex
	// windows throttles announcements per user: see announce.
	windows map[string]*announceWindow
	// refreshUsers are users whose entries are to be recorded again and
	// announced (their broker subscription came back); refreshEvery asks
	// for all of them (the broker came back).
	refreshUsers map[string]struct{}
	refreshEvery bool
	wake         chan struct{}

	// joins groups the presence joins of sessions that start together (a
	// reconnect storm: thousands in a second) into one pipelined write.
	joins grouper[presenceJoin]
}

// presenceJoin is one session's join, in a group of joins.
type presenceJoin struct {
	s   *session
	err error
}

// Presence joins: at most presenceJoinWriters broker writes at once; what
// arrives meanwhile is written together, up to presenceJoinGroup entries.
const (
	presenceJoinWriters = 2
	presenceJoinGroup   = 512
)

// announceEvery is the least time between two presence frames for one
// user: the first join or leave is announced at once, the ones that follow
// within the window are folded into one "sync" frame at its end. Without
// it, k sockets of a user connecting together cost k frames of up to k
// entries each to each of them: O(k^3) bytes.
const announceEvery = 200 * time.Millisecond

type announceWindow struct {
	until   time.Time // end of the current window
	pending bool      // a change arrived during the window
}

// heartbeatSlices spreads the presence refresh over its period: each tick
// refreshes the users of numShards/heartbeatSlices registry shards, so that
// 10,000 sockets do not all hit Redis in the same instant.
const heartbeatSlices = 8

func newPresence(h *Hub, ttl time.Duration) *presence {
	if ttl <= 0 {
		ttl = DefaultPresenceTTL
	}
	p := &presence{hub: h, ttl: ttl, windows: map[string]*announceWindow{},
		refreshUsers: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	p.joins = grouper[presenceJoin]{max: presenceJoinWriters, maxGroup: presenceJoinGroup, run: p.writeJoins}
	return p
}

type presenceFrame struct {
	Type      string          `json:"type"`
	Event     string          `json:"event"` // join, leave, sync
	SessionID string          `json:"session_id,omitempty"`
	Online    int             `json:"online"`
	Sessions  []PresenceEntry `json:"sessions"`
}

// join records s and tells the user's sessions everywhere. With the broker
// down the entry is recorded when it comes back (refreshAll).
func (p *presence) join(ctx context.Context, s *session) {
	j := &presenceJoin{s: s}
	if !p.joins.do(ctx, j, false) || j.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	p.announce(ctx, s.userID, "join", s.id)
}

// writeJoins records a group of joins in one pipelined broker write.
func (p *presence) writeJoins(ctx context.Context, group []*presenceJoin) {
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	entries := make([]PresenceEntry, len(group))
	for i, j := range group {
		entries[i] = j.s.presence
	}
	err := p.hub.broker.PresenceSet(ctx, entries, p.ttl)
	p.hub.relay.result(err)
	if err != nil {
		p.hub.logger.Warn("presence: joins not recorded (broker down); they will be on recovery", "sessions", len(group), "err", err)
	}
	for _, j := range group {
		j.err = err
	}
}

// leave removes s and tells the others.
func (p *presence) leave(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	err := p.hub.broker.PresenceRemove(ctx, s.presence)
	p.hub.relay.result(err)
	if err == nil {
		p.announce(ctx, s.userID, "leave", s.id)
	}
}

// list returns the user's live entries (presence.list).
func (p *presence) list(ctx context.Context, user string) ([]PresenceEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	list, err := p.hub.broker.PresenceList(ctx, user)
	p.hub.relay.result(err)
	return list, err
}

// announce announces a join or leave now, or folds it into a "sync" at
// the end of the user's current window (sent by the run loop).
func (p *presence) announce(ctx context.Context, user, event, sessionID string) {
	now := time.Now()
	p.mu.Lock()
	w := p.windows[user]
	if w == nil || now.After(w.until) {
		p.windows[user] = &announceWindow{until: now.Add(announceEvery)}
		p.mu.Unlock()
		p.publish(ctx, user, event, sessionID)
		return
	}
	w.pending = true
	p.mu.Unlock()
	signal(p.wake)
}

// publish sends the user's current presence list with event.
func (p *presence) publish(ctx context.Context, user, event, sessionID string) {
	list, err := p.hub.broker.PresenceList(ctx, user)
	p.hub.relay.result(err)
	if err != nil {
		return
	}
	frame := encode(presenceFrame{Type: TypePresenceInfo, Event: event, SessionID: sessionID, Online: len(list), Sessions: list})
	_ = p.hub.PublishUser(ctx, user, frame)
}

// refresh asks the run loop to record user's entries again and announce
// them; it never blocks (the broker's delivery goroutine calls it).
func (p *presence) refresh(user string) {
	p.mu.Lock()
	p.refreshUsers[user] = struct{}{}
	p.mu.Unlock()
	signal(p.wake)
}

// refreshAll is refresh for every user with a session here.
func (p *presence) refreshAll() {
	p.mu.Lock()
	p.refreshEvery = true
	p.mu.Unlock()
	signal(p.wake)
}

// run refreshes this instance's entries, every entry once per ttl/3, so
// that entries of a crashed instance expire and entries lost by Redis come
// back; it sends the folded announcements when their windows end and the
// refreshes asked for. It returns when ctx ends.
func (p *presence) run(ctx context.Context) error {
	beat := time.NewTicker(p.ttl / 3 / heartbeatSlices)
	defer beat.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	slice := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-beat.C:
			p.heartbeat(ctx, slice)
			slice = (slice + 1) % heartbeatSlices
		case <-p.wake:
		case <-due.C:
		}
		p.refreshAsked(ctx)
		next := p.flushWindows(ctx)
		due.Reset(next)
	}
}

// heartbeat re-records the entries of one slice of the registry.
func (p *presence) heartbeat(ctx context.Context, slice int) {
	var entries []PresenceEntry
	p.hub.reg.eachShard(func(i int) bool { return i%heartbeatSlices == slice }, func(_ string, sessions []*session) {
		for _, s := range sessions {
			entries = append(entries, s.presence)
		}
	})
	if slice == 0 {
		p.sweep()
	}
	if len(entries) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := p.hub.broker.PresenceSet(cctx, entries, p.ttl)
	cancel()
	if err != nil && ctx.Err() == nil {
		p.hub.logger.Warn("presence heartbeat failed", "err", err)
	}
	p.hub.relay.result(err)
}

// refreshAsked records and announces the entries of the users refresh and
// refreshAll asked for.
func (p *presence) refreshAsked(ctx context.Context) {
	p.mu.Lock()
	users, every := p.refreshUsers, p.refreshEvery
	if len(users) == 0 && !every {
		p.mu.Unlock()
		return
	}
	p.refreshUsers, p.refreshEvery = map[string]struct{}{}, false
	p.mu.Unlock()

	byUser := map[string][]PresenceEntry{}
	add := func(user string, sessions []*session) {
		for _, s := range sessions {
			byUser[user] = append(byUser[user], s.presence)
		}
	}
	if every {
		p.hub.reg.each(add)
	} else {
		for u := range users {
			list, _ := p.hub.reg.get(u)
			add(u, list)
		}
	}
	if len(byUser) == 0 {
		return
	}
	var entries []PresenceEntry
	for _, e := range byUser {
		entries = append(entries, e...)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := p.hub.broker.PresenceSet(cctx, entries, p.ttl)
	p.hub.relay.result(err)
	if err != nil {
		return
	}
	for u := range byUser {
		actx, acancel := context.WithTimeout(ctx, brokerTimeout)
		p.publish(actx, u, "sync", "")
		acancel()
	}
}

// flushWindows sends the folded announcement of every window that ended
// with changes pending, and returns how long until the next one ends.
func (p *presence) flushWindows(ctx context.Context) time.Duration {
	now := time.Now()
	next := time.Hour
	var users []string
	p.mu.Lock()
	for u, w := range p.windows {
		if !w.pending {
			continue
		}
		if left := w.until.Sub(now); left > 0 {
			next = min(next, left)
			continue
		}
		w.pending = false
		w.until = now.Add(announceEvery)
		users = append(users, u)
	}
	p.mu.Unlock()
	for _, u := range users {
		actx, cancel := context.WithTimeout(ctx, 2*brokerTimeout)
		p.publish(actx, u, "sync", "")
		cancel()
	}
	return next
}

// sweep forgets the windows that ended.
func (p *presence) sweep() {
	now := time.Now()
	p.mu.Lock()
	for u, w := range p.windows {
		if !w.pending && now.After(w.until) {
			delete(p.windows, u)
		}
	}
	p.mu.Unlock()
}
