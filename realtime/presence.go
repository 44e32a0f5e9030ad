package realtime

import (
	"context"
	"encoding/json"
	"time"

	"github.com/coder/websocket"
)

// Broker message kinds: the first byte of every broker message.
const (
	msgFrame  byte = 'f' // the rest is a frame for every session of the user
	msgClose  byte = 'c' // the rest is a closeCommand: close every session
	msgSignal byte = 's' // the rest is an opaque payload for the signal handler
)

type closeCommand struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// brokerTimeout bounds every broker call made on behalf of a session, so
// that a Redis outage slows nothing down for long: task sync does not
// depend on the broker.
const brokerTimeout = 500 * time.Millisecond

// PublishUser sends a frame to every session of user on every instance
// (chat token streams use it).
func (h *Hub) PublishUser(ctx context.Context, user string, frame []byte) error {
	return h.publish(ctx, user, msgFrame, frame)
}

// publish sends a broker message of kind to user's channel and records
// whether the broker answered.
func (h *Hub) publish(ctx context.Context, user string, kind byte, payload []byte) error {
	msg := make([]byte, 0, len(payload)+1)
	msg = append(append(msg, kind), payload...)
	err := h.broker.Publish(ctx, user, msg)
	h.brokerResult(err)
	return err
}

// CloseUser closes every session of user on every instance with code
// (sign-out everywhere).
func (h *Hub) CloseUser(ctx context.Context, user string, code websocket.StatusCode, reason string) error {
	b, _ := json.Marshal(closeCommand{Code: int(code), Reason: reason})
	return h.publish(ctx, user, msgClose, b)
}

func (h *Hub) onBrokerMessage(user string, msg []byte) {
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case msgFrame:
		h.sendUser(user, msg[1:])
	case msgClose:
		var c closeCommand
		if json.Unmarshal(msg[1:], &c) == nil {
			h.closeUser(user, websocket.StatusCode(c.Code), c.Reason)
		}
	case msgSignal:
		if fn := h.signalHandler.Load(); fn != nil {
			(*fn)(user, msg[1:])
		}
	}
}

// SignalUser sends an opaque payload to the signal handler of every
// instance where user has a session (for example: cancel a chat turn that
// runs on another instance).
func (h *Hub) SignalUser(ctx context.Context, user string, payload []byte) error {
	return h.publish(ctx, user, msgSignal, payload)
}

// OnSignal sets the function that receives SignalUser payloads on this
// instance. It runs on the broker's delivery goroutine and must not block.
func (h *Hub) OnSignal(fn func(user string, payload []byte)) {
	h.signalHandler.Store(&fn)
}

// RunBroker delivers broker messages to local sessions until ctx ends.
func (h *Hub) RunBroker(ctx context.Context) error {
	return h.broker.Run(ctx, h.onBrokerMessage, func(user string) {
		h.brokerResult(nil)
		h.refreshPresence(ctx, user)
	})
}

// brokerResult records the outcome of a broker call: a failure marks the
// broker down; the next success counts one reconnect and refreshes presence
// everywhere.
func (h *Hub) brokerResult(err error) {
	if err != nil {
		h.brokerDown.Store(true)
		return
	}
	if h.brokerDown.CompareAndSwap(true, false) {
		h.metrics.redisReconnects.Inc()
		h.logger.Info("broker is back; refreshing presence")
		go h.eachUser(func(user string, _ []*session) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h.refreshPresence(ctx, user)
		})
	}
}

type presenceFrame struct {
	Type      string          `json:"type"`
	Event     string          `json:"event"` // join, leave, sync
	SessionID string          `json:"session_id,omitempty"`
	Online    int             `json:"online"`
	Sessions  []PresenceEntry `json:"sessions"`
}

// presenceJoin registers s and tells the user's sessions everywhere.
func (h *Hub) presenceJoin(s *session, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(s.ctx, brokerTimeout)
	defer cancel()
	err := h.broker.PresenceSet(ctx, []PresenceEntry{s.presence}, ttl)
	h.brokerResult(err)
	if err != nil {
		h.logger.Warn("presence: join not recorded (broker down); it will be on recovery", "err", err)
		return
	}
	h.announceThrottled(ctx, s.userID, "join", s.id)
}

// presenceLeave removes s and tells the others.
func (h *Hub) presenceLeave(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	err := h.broker.PresenceRemove(ctx, s.presence)
	h.brokerResult(err)
	if err == nil {
		h.announceThrottled(ctx, s.userID, "leave", s.id)
	}
}

// announceWindow is the least time between two presence frames for one
// user: the first join or leave is announced at once, the ones that follow
// within the window are folded into one "sync" frame at its end. Without
// it, k sockets of a user connecting together cost k frames of up to k
// entries each to each of them: O(k^3) bytes.
const announceWindow = 200 * time.Millisecond

type announceState struct {
	until   time.Time // end of the current window
	pending bool      // a change arrived during the window
}

// announceThrottled announces a join or leave now, or at the end of the
// user's current window.
func (h *Hub) announceThrottled(ctx context.Context, user, event, sessionID string) {
	now := time.Now()
	h.amu.Lock()
	st := h.announces[user]
	if st == nil || now.After(st.until) {
		h.announces[user] = &announceState{until: now.Add(announceWindow)}
		h.amu.Unlock()
		h.announce(ctx, user, event, sessionID)
		return
	}
	if !st.pending {
		st.pending = true
		time.AfterFunc(st.until.Sub(now), func() { h.flushAnnounce(user) })
	}
	h.amu.Unlock()
}

// flushAnnounce sends the folded announcement at the end of a window and
// opens the next one.
func (h *Hub) flushAnnounce(user string) {
	h.amu.Lock()
	if st := h.announces[user]; st != nil {
		st.pending = false
		st.until = time.Now().Add(announceWindow)
	}
	h.amu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*brokerTimeout)
	defer cancel()
	h.announce(ctx, user, "sync", "")
}

// sweepAnnounces forgets the windows that ended (the heartbeat calls it).
func (h *Hub) sweepAnnounces() {
	now := time.Now()
	h.amu.Lock()
	for user, st := range h.announces {
		if !st.pending && now.After(st.until) {
			delete(h.announces, user)
		}
	}
	h.amu.Unlock()
}

// announce publishes the user's current presence list with event.
func (h *Hub) announce(ctx context.Context, user, event, sessionID string) {
	list, err := h.broker.PresenceList(ctx, user)
	h.brokerResult(err)
	if err != nil {
		return
	}
	frame := encode(presenceFrame{Type: TypePresenceInfo, Event: event, SessionID: sessionID, Online: len(list), Sessions: list})
	_ = h.PublishUser(ctx, user, frame)
}

// refreshPresence re-records the user's local sessions (lost with a Redis
// restart) and announces the list again.
func (h *Hub) refreshPresence(ctx context.Context, user string) {
	list, _ := h.userSessions(user)
	if len(list) == 0 {
		return
	}
	entries := make([]PresenceEntry, len(list))
	for i, s := range list {
		entries[i] = s.presence
	}
	if err := h.broker.PresenceSet(ctx, entries, h.presenceTTL); err != nil {
		h.brokerResult(err)
		return
	}
	h.announce(ctx, user, "sync", "")
}

// heartbeatSlices spreads the presence refresh over its period: each tick
// refreshes the users of numShards/heartbeatSlices hub shards, so that
// 10,000 sockets do not all hit Redis in the same instant.
const heartbeatSlices = 8

// RunPresence refreshes this instance's presence entries, every entry once
// per PresenceTTL/3, until ctx ends, so that entries of a crashed instance
// expire and entries lost by Redis come back.
func (h *Hub) RunPresence(ctx context.Context) error {
	t := time.NewTicker(h.presenceTTL / 3 / heartbeatSlices)
	defer t.Stop()
	for slice := 0; ; slice = (slice + 1) % heartbeatSlices {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		var entries []PresenceEntry
		for i := slice; i < numShards; i += heartbeatSlices {
			sh := &h.shards[i]
			sh.mu.RLock()
			for _, f := range sh.feeds {
				for _, s := range f.sessions {
					entries = append(entries, s.presence)
				}
			}
			sh.mu.RUnlock()
		}
		if slice == 0 {
			h.sweepAnnounces()
		}
		if len(entries) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := h.broker.PresenceSet(cctx, entries, h.presenceTTL)
		cancel()
		if err != nil && ctx.Err() == nil {
			h.logger.Warn("presence heartbeat failed", "err", err)
		}
		h.brokerResult(err)
	}
}
