package realtime

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"
)

// Broker carries ephemeral per-user messages between instances: presence,
// chat token streams, session control. Task changes never travel here; they
// come from the durable change log, so losing a broker message never loses
// data.
type Broker interface {
	// Subscribe and Unsubscribe declare whether this instance wants the
	// messages of user. They never block (the hub calls them under a lock);
	// the broker applies them in the background. The channel Subscribe
	// returns is closed once messages published from now on are sure to
	// arrive (the subscription is confirmed); sessions wait for it, bounded,
	// before they start, so that they miss nothing of their own join or of
	// a chat turn they start at once.
	Subscribe(user string) (ready <-chan struct{})
	Unsubscribe(user string)
	// Publish sends msg to every instance subscribed to user, this one
	// included.
	Publish(ctx context.Context, user string, msg []byte) error
	// Run delivers messages until ctx ends. resubscribed is called for a
	// user whose subscription came back after a broker outage (messages
	// may have been lost meanwhile; presence should be refreshed).
	Run(ctx context.Context, deliver func(user string, msg []byte), resubscribed func(user string)) error

	// PresenceSet adds or refreshes entries, each expiring after ttl
	// unless refreshed again.
	PresenceSet(ctx context.Context, entries []PresenceEntry, ttl time.Duration) error
	// PresenceRemove removes one entry.
	PresenceRemove(ctx context.Context, e PresenceEntry) error
	// PresenceList returns the live entries of user, oldest first.
	PresenceList(ctx context.Context, user string) ([]PresenceEntry, error)
}

// PresenceEntry is one online session of a user.
type PresenceEntry struct {
	SessionID   string    `json:"session_id"`
	UserID      string    `json:"-"`
	Device      string    `json:"device"`
	Instance    string    `json:"instance"`
	ConnectedAt time.Time `json:"connected_at"`

	encoded string // member(), computed once by newPresenceEntry
}

func newPresenceEntry(e PresenceEntry) PresenceEntry {
	e.encoded = e.member()
	return e
}

// member is the entry's encoding in the presence set; the heartbeat sends
// it for every session every few seconds, so it is encoded once.
func (e PresenceEntry) member() string {
	if e.encoded != "" {
		return e.encoded
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// MemoryBroker is the in-process Broker used when REDIS_URL is not set: it
// serves one instance.
type MemoryBroker struct {
	mu       sync.Mutex
	subs     map[string]bool
	presence map[string]map[string]memEntry
	msgs     chan memMsg
}

type memMsg struct {
	user string
	msg  []byte
}

type memEntry struct {
	e       PresenceEntry
	expires time.Time
}

// NewMemoryBroker returns an empty MemoryBroker.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{subs: map[string]bool{}, presence: map[string]map[string]memEntry{}, msgs: make(chan memMsg, 1024)}
}

// closedChan is ready at once: in-process subscriptions take effect
// immediately.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (b *MemoryBroker) Subscribe(user string) <-chan struct{} {
	b.mu.Lock()
	b.subs[user] = true
	b.mu.Unlock()
	return closedChan
}

func (b *MemoryBroker) Unsubscribe(user string) {
	b.mu.Lock()
	delete(b.subs, user)
	b.mu.Unlock()
}

func (b *MemoryBroker) Publish(ctx context.Context, user string, msg []byte) error {
	b.mu.Lock()
	ok := b.subs[user]
	b.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case b.msgs <- memMsg{user, msg}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *MemoryBroker) Run(ctx context.Context, deliver func(string, []byte), _ func(string)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-b.msgs:
			b.mu.Lock()
			ok := b.subs[m.user]
			b.mu.Unlock()
			if ok {
				deliver(m.user, m.msg)
			}
		}
	}
}

func (b *MemoryBroker) PresenceSet(_ context.Context, entries []PresenceEntry, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	exp := time.Now().Add(ttl)
	for _, e := range entries {
		m := b.presence[e.UserID]
		if m == nil {
			m = map[string]memEntry{}
			b.presence[e.UserID] = m
		}
		m[e.SessionID] = memEntry{e, exp}
	}
	return nil
}

func (b *MemoryBroker) PresenceRemove(_ context.Context, e PresenceEntry) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.presence[e.UserID]; m != nil {
		delete(m, e.SessionID)
		if len(m) == 0 {
			delete(b.presence, e.UserID)
		}
	}
	return nil
}

func (b *MemoryBroker) PresenceList(_ context.Context, user string) ([]PresenceEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	out := []PresenceEntry{} // never nil: frames carry "sessions":[], not null
	for id, me := range b.presence[user] {
		if now.After(me.expires) {
			delete(b.presence[user], id)
			continue
		}
		out = append(out, me.e)
	}
	sortPresence(out)
	return out, nil
}

func sortPresence(list []PresenceEntry) {
	sort.Slice(list, func(i, j int) bool {
		if !list[i].ConnectedAt.Equal(list[j].ConnectedAt) {
			return list[i].ConnectedAt.Before(list[j].ConnectedAt)
		}
		return list[i].SessionID < list[j].SessionID
	})
}
