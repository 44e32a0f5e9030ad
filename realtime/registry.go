package realtime

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// registry is the hub's map of users to their sessions on this instance,
// sharded so that sessions coming and going for different users do not
// contend on one lock.
type registry struct {
	seed   maphash.Seed
	shards [numShards]shard
}

const numShards = 64

type shard struct {
	mu    sync.RWMutex
	feeds map[string]*feed
}

// feed is one user's presence on this instance.
type feed struct {
	// cursor is the last seq the hub dispatched for the user; moved only
	// under the hub's dmu, with the dispatch.
	cursor atomic.Int64
	// sessions is copy-on-write: replaced (never modified) under the shard
	// lock, so dispatch iterates it without holding the lock.
	sessions []*session
}

func (r *registry) init() {
	r.seed = maphash.MakeSeed()
	for i := range r.shards {
		r.shards[i].feeds = map[string]*feed{}
	}
}

func (r *registry) shard(user string) *shard {
	return &r.shards[maphash.String(r.seed, user)%numShards]
}

// add appends s to its user's feed, creating the feed (its cursor at the
// session's) if needed; it refuses when the user has max sessions (max > 0).
func (r *registry) add(s *session, max int) error {
	sh := r.shard(s.userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f := sh.feeds[s.userID]
	if f == nil {
		f = &feed{}
		f.cursor.Store(s.cursor)
		sh.feeds[s.userID] = f
	}
	if max > 0 && len(f.sessions) >= max {
		if len(f.sessions) == 0 {
			delete(sh.feeds, s.userID)
		}
		return errTooManySockets
	}
	next := make([]*session, len(f.sessions), len(f.sessions)+1)
	copy(next, f.sessions)
	f.sessions = append(next, s)
	return nil
}

// remove takes s out; last says the user has no session left here.
func (r *registry) remove(s *session) (removed, last bool) {
	sh := r.shard(s.userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f := sh.feeds[s.userID]
	if f == nil {
		return false, false
	}
	next := make([]*session, 0, len(f.sessions))
	for _, o := range f.sessions {
		if o != s {
			next = append(next, o)
		}
	}
	if len(next) == len(f.sessions) {
		return false, false
	}
	if len(next) == 0 {
		delete(sh.feeds, s.userID)
		return true, true
	}
	f.sessions = next
	return true, false
}

// get returns the user's sessions (do not modify) and feed, or nils.
func (r *registry) get(user string) ([]*session, *feed) {
	sh := r.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	f := sh.feeds[user]
	if f == nil {
		return nil, nil
	}
	return f.sessions, f
}

// each calls fn for every user with a session here, outside the shard
// locks (fn may take them).
func (r *registry) each(fn func(user string, sessions []*session)) {
	r.eachShard(func(int) bool { return true }, fn)
}

// eachShard is each restricted to the shards that pick selects.
func (r *registry) eachShard(pick func(i int) bool, fn func(user string, sessions []*session)) {
	type entry struct {
		u string
		s []*session
	}
	var list []entry
	for i := range r.shards {
		if !pick(i) {
			continue
		}
		sh := &r.shards[i]
		sh.mu.RLock()
		list = list[:0]
		for u, f := range sh.feeds {
			list = append(list, entry{u, f.sessions})
		}
		sh.mu.RUnlock()
		for _, e := range list {
			fn(e.u, e.s)
		}
	}
}
