package realtime

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// relay carries the hub's ephemeral per-user messages through the broker:
// frames for every session of a user (chat streams, presence), session
// control (sign-out everywhere) and opaque signals (chat cancels). Task
// changes never travel here.
type relay struct {
	hub  *Hub
	down atomic.Bool // the last broker call failed
	// signalHandler receives SignalUser payloads (see OnSignal).
	signalHandler atomic.Pointer[func(user string, payload []byte)]
}

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

// subscribeWait bounds how long a new session waits for its user's broker
// subscription before it records its presence (and chat.send before it
// starts a turn).
const subscribeWait = 2 * time.Second

// PublishUser sends a frame to every session of user on every instance
// (chat token streams use it).
func (h *Hub) PublishUser(ctx context.Context, user string, frame []byte) error {
	return h.relay.publish(ctx, user, msgFrame, frame)
}

// CloseUser closes every session of user on every instance with d
// (sign-out everywhere).
func (h *Hub) CloseUser(ctx context.Context, user string, d Disconnect) error {
	h.closeUser(user, d) // this instance does not depend on the broker
	b, _ := json.Marshal(closeCommand{Code: int(d.Code), Reason: d.Reason})
	return h.relay.publish(ctx, user, msgClose, b)
}

// CloseUserLocal closes every session of user on this instance only (for
// callers that learn of a sign-out from elsewhere, like a database
// notification).
func (h *Hub) CloseUserLocal(user string, d Disconnect) { h.closeUser(user, d) }

// SignalUser sends an opaque payload to the signal handler of every
// instance where user has a session (for example: cancel a chat turn that
// runs on another instance).
func (h *Hub) SignalUser(ctx context.Context, user string, payload []byte) error {
	return h.relay.publish(ctx, user, msgSignal, payload)
}

// OnSignal sets the function that receives SignalUser payloads on this
// instance. It runs on the broker's delivery goroutine and must not block.
func (h *Hub) OnSignal(fn func(user string, payload []byte)) {
	h.relay.signalHandler.Store(&fn)
}

// publish sends a broker message of kind to user's channel and records
// whether the broker answered.
func (r *relay) publish(ctx context.Context, user string, kind byte, payload []byte) error {
	msg := make([]byte, 0, len(payload)+1)
	msg = append(append(msg, kind), payload...)
	err := r.hub.broker.Publish(ctx, user, msg)
	r.result(err)
	return err
}

// run delivers broker messages to local sessions until ctx ends. The
// delivery goroutine never calls the broker itself: a resubscription only
// asks presence to refresh the user.
func (r *relay) run(ctx context.Context) error {
	return r.hub.broker.Run(ctx, r.deliver, func(user string) {
		r.result(nil)
		r.hub.presence.refresh(user)
	})
}

func (r *relay) deliver(user string, msg []byte) {
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case msgFrame:
		r.hub.sendUser(user, msg[1:])
	case msgClose:
		var c closeCommand
		if json.Unmarshal(msg[1:], &c) == nil {
			r.hub.closeUser(user, Disconnect{Code: websocket.StatusCode(c.Code), Reason: c.Reason})
		}
	case msgSignal:
		if fn := r.signalHandler.Load(); fn != nil {
			(*fn)(user, msg[1:])
		}
	}
}

// result records the outcome of a broker call: a failure marks the broker
// down; the next success counts one recovery and has presence refreshed
// for every local user (entries and frames may have been lost meanwhile).
func (r *relay) result(err error) {
	if err != nil {
		r.down.Store(true)
		return
	}
	if r.down.CompareAndSwap(true, false) {
		r.hub.metrics.redisReconnects.Inc()
		r.hub.logger.Info("broker is back; refreshing presence")
		r.hub.presence.refreshAll()
	}
}
