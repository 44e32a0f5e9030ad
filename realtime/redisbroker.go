package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBroker is the Broker for several instances: Redis pub/sub for
// messages (one channel per user, subscribed only while the user has a
// session on this instance) and a sorted set per user for presence.
//
// go-redis reconnects and resubscribes by itself. A subscribe confirmation
// for a channel that was already confirmed means the connection was lost
// and re-established; Run reports it through resubscribed.
type RedisBroker struct {
	rdb    *redis.Client
	prefix string
	logger *slog.Logger

	mu      sync.Mutex
	changes map[string]bool // user -> wanted (true) or not (false), not yet applied
	wanted  map[string]*subscription
	wake    chan struct{}
}

// subscription is one user's channel as the hub wants it.
type subscription struct {
	ready     chan struct{} // closed at the first confirmation
	confirmed bool
}

// NewRedisBroker returns a broker over rdb whose keys and channels start
// with prefix (so that several deployments, or tests, can share a Redis).
func NewRedisBroker(rdb *redis.Client, prefix string, logger *slog.Logger) *RedisBroker {
	if logger == nil {
		logger = slog.Default()
	}
	return &RedisBroker{rdb: rdb, prefix: prefix, logger: logger,
		changes: map[string]bool{}, wanted: map[string]*subscription{}, wake: make(chan struct{}, 1)}
}

func (b *RedisBroker) channel(user string) string     { return b.prefix + ":u:" + user }
func (b *RedisBroker) presenceKey(user string) string { return b.prefix + ":presence:" + user }

func (b *RedisBroker) Subscribe(user string) <-chan struct{} {
	b.mu.Lock()
	sub := b.wanted[user]
	if sub == nil {
		sub = &subscription{ready: make(chan struct{})}
		b.wanted[user] = sub
		b.changes[user] = true
	}
	b.mu.Unlock()
	signal(b.wake)
	return sub.ready
}

func (b *RedisBroker) Unsubscribe(user string) {
	b.mu.Lock()
	delete(b.wanted, user)
	b.changes[user] = false
	b.mu.Unlock()
	signal(b.wake)
}

// confirmed records a subscribe confirmation from Redis; it reports
// whether the channel had been confirmed before (a resubscription after a
// reconnect).
func (b *RedisBroker) confirmed(user string) (again bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub := b.wanted[user]
	if sub == nil {
		return false
	}
	if sub.confirmed {
		return true
	}
	sub.confirmed = true
	close(sub.ready)
	return false
}

func (b *RedisBroker) Publish(ctx context.Context, user string, msg []byte) error {
	if err := b.rdb.Publish(ctx, b.channel(user), msg).Err(); err != nil {
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// Run owns the subscription: it applies Subscribe/Unsubscribe in batches
// and delivers messages until ctx ends.
func (b *RedisBroker) Run(ctx context.Context, deliver func(string, []byte), resubscribed func(string)) error {
	ps := b.rdb.Subscribe(ctx)
	defer ps.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.applyChanges(ctx, ps)
	}()
	defer wg.Wait()

	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-ch:
			if !ok {
				return ctx.Err()
			}
			switch m := m.(type) {
			case *redis.Message:
				if user, ok := strings.CutPrefix(m.Channel, b.prefix+":u:"); ok {
					deliver(user, []byte(m.Payload))
				}
			case *redis.Subscription:
				user, ok := strings.CutPrefix(m.Channel, b.prefix+":u:")
				if !ok {
					continue
				}
				// Confirmed twice: go-redis resubscribed after a reconnect.
				if m.Kind == "subscribe" && b.confirmed(user) && resubscribed != nil {
					resubscribed(user)
				}
			}
		}
	}
}

// applyChanges sends SUBSCRIBE/UNSUBSCRIBE for what the hub asked since the
// last round. go-redis remembers the channels even when the command fails,
// and subscribes them again on its next connection.
func (b *RedisBroker) applyChanges(ctx context.Context, ps *redis.PubSub) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		b.mu.Lock()
		changes := b.changes
		b.changes = map[string]bool{}
		b.mu.Unlock()
		var sub, unsub []string
		for u, want := range changes {
			if want {
				sub = append(sub, b.channel(u))
			} else {
				unsub = append(unsub, b.channel(u))
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if len(unsub) > 0 {
			if err := ps.Unsubscribe(cctx, unsub...); err != nil && ctx.Err() == nil {
				b.logger.Warn("redis unsubscribe", "err", err, "channels", len(unsub))
			}
		}
		if len(sub) > 0 {
			if err := ps.Subscribe(cctx, sub...); err != nil && ctx.Err() == nil {
				b.logger.Warn("redis subscribe (go-redis will retry on reconnect)", "err", err, "channels", len(sub))
			}
		}
		cancel()
	}
}

func (b *RedisBroker) PresenceSet(ctx context.Context, entries []PresenceEntry, ttl time.Duration) error {
	if len(entries) == 0 {
		return nil
	}
	exp := float64(time.Now().Add(ttl).UnixMilli())
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			key := b.presenceKey(e.UserID)
			p.ZAdd(ctx, key, redis.Z{Score: exp, Member: e.member()})
			p.PExpire(ctx, key, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis presence set: %w", err)
	}
	return nil
}

func (b *RedisBroker) PresenceRemove(ctx context.Context, e PresenceEntry) error {
	if err := b.rdb.ZRem(ctx, b.presenceKey(e.UserID), e.member()).Err(); err != nil {
		return fmt.Errorf("redis presence remove: %w", err)
	}
	return nil
}

func (b *RedisBroker) PresenceList(ctx context.Context, user string) ([]PresenceEntry, error) {
	key := b.presenceKey(user)
	var members *redis.StringSliceCmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(time.Now().UnixMilli(), 10))
		members = p.ZRange(ctx, key, 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis presence list: %w", err)
	}
	out := make([]PresenceEntry, 0, len(members.Val()))
	for _, m := range members.Val() {
		var e PresenceEntry
		if json.Unmarshal([]byte(m), &e) == nil {
			e.UserID = user
			out = append(out, e)
		}
	}
	sortPresence(out)
	return out, nil
}
