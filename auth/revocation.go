package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/singleflight"

	"tasksync"
	"tasksync/internal/reqlog"
)

// RevocationChannel is the Postgres NOTIFY channel on which the
// user_revocations trigger (migrations/00004) announces every revocation,
// in the same transaction as the write. The payload is
// "<revoked_before in Unix microseconds>:<user id>".
const RevocationChannel = "tasksync_revocations"

// Defaults of [Revocations].
const (
	// DefaultRevocationCacheSize is how many users' revocation states one
	// instance keeps when RevocationConfig.CacheSize is 0; the least
	// recently used go first. An entry is under 100 bytes plus the user id.
	DefaultRevocationCacheSize = 100_000
	// DefaultRevocationCacheTTL is how long a cached state is used before
	// Postgres is asked again, when RevocationConfig.CacheTTL is 0.
	// Notifications keep the cache current; the TTL only bounds how long a
	// notification lost without the listener noticing (a LISTEN connection
	// that died silently) can go unseen.
	DefaultRevocationCacheTTL = time.Minute
	// DefaultRevocationQueryTimeout bounds one read or write of
	// user_revocations when RevocationConfig.QueryTimeout is 0.
	DefaultRevocationQueryTimeout = 5 * time.Second
)

// RowQuerier runs a query that returns at most one row. *pgxpool.Pool,
// *pgx.Conn and pgx.Tx all are one.
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// RevocationConfig configures [Revocations]. Zero values mean the
// documented defaults.
type RevocationConfig struct {
	// CacheSize is the most users whose state is cached; 0 means
	// DefaultRevocationCacheSize.
	CacheSize int
	// CacheTTL is how long a cached state is trusted without asking
	// Postgres; 0 means DefaultRevocationCacheTTL.
	CacheTTL time.Duration
	// QueryTimeout bounds each query; 0 means DefaultRevocationQueryTimeout.
	QueryTimeout time.Duration
	// OnRevoke, when set, is called with every revocation that arrives as a
	// notification (from this instance or another), on the listener's
	// goroutine: it must not block. cmd/server closes the user's sockets on
	// this instance with it.
	OnRevoke func(user string, revokedBefore time.Time)
	// Now is the clock of the cache TTL; nil means time.Now. For tests.
	Now func() time.Time
}

// Revocations is "sign out everywhere": per user, the time before which
// that user's tokens are refused (revoked_before), stored in Postgres
// (user_revocations) and cached on every instance. See the package
// documentation for the rule, the cache and what happens when Postgres
// cannot be reached.
//
// It is safe for concurrent use. It starts no goroutine: notifications
// reach it through a LISTEN loop that someone else owns (it is a
// pgxlisten.Handler and BacklogHandler for [RevocationChannel]).
type Revocations struct {
	db       RowQuerier
	ttl      time.Duration
	timeout  time.Duration
	onRevoke func(string, time.Time)
	now      func() time.Time
	loads    singleflight.Group // one query per user at a time

	mu    sync.Mutex
	cache *simplelru.LRU[string, revocationEntry]
	// epoch is bumped by Purge. A read that began before a purge must not
	// fill the cache after it: it may predate a revocation whose
	// notification was lost, which is what the purge is for.
	epoch uint64
}

// revocationEntry is the cached state of one user.
type revocationEntry struct {
	before time.Time // zero: no revocation
	at     time.Time // when it was read or learnt (for the TTL)
}

// NewRevocations returns the revocations stored in db (normally the pool).
func NewRevocations(db RowQuerier, cfg RevocationConfig) (*Revocations, error) {
	if db == nil {
		return nil, errors.New("revocations: no database")
	}
	if cfg.CacheSize < 0 || cfg.CacheTTL < 0 || cfg.QueryTimeout < 0 {
		return nil, errors.New("revocations: cache size, TTL and query timeout must not be negative")
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultRevocationCacheSize
	}
	cache, err := simplelru.NewLRU[string, revocationEntry](size, nil)
	if err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	r := &Revocations{
		db:       db,
		ttl:      orDefault(cfg.CacheTTL, DefaultRevocationCacheTTL),
		timeout:  orDefault(cfg.QueryTimeout, DefaultRevocationQueryTimeout),
		onRevoke: cfg.OnRevoke,
		now:      cfg.Now,
		cache:    cache,
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Revoke refuses, from now on and on every instance, every token of user
// issued before now (the database's clock) and returns that time. The row
// and its notification commit together; this instance's cache has it when
// Revoke returns. A user who signs out everywhere twice keeps the later
// time.
func (r *Revocations) Revoke(ctx context.Context, user string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var before time.Time
	err := r.db.QueryRow(ctx, `
		INSERT INTO user_revocations AS r (user_id, revoked_before) VALUES ($1, now())
		ON CONFLICT (user_id) DO UPDATE SET revoked_before = greatest(r.revoked_before, EXCLUDED.revoked_before)
		RETURNING r.revoked_before`, user).Scan(&before)
	if err != nil {
		return time.Time{}, fmt.Errorf("store revocation: %w", err)
	}
	r.mu.Lock()
	r.learnLocked(user, before)
	r.mu.Unlock()
	return before, nil
}

// RevokedBefore returns the time before which user's tokens are refused,
// or the zero time when the user never signed out everywhere. A state
// cached less than CacheTTL ago is answered without a query; otherwise
// Postgres is read once (concurrent callers for the same user share the
// read), and an error means the state is unknown.
func (r *Revocations) RevokedBefore(ctx context.Context, user string) (time.Time, error) {
	r.mu.Lock()
	e, ok := r.cache.Get(user)
	r.mu.Unlock()
	if ok && r.now().Sub(e.at) < r.ttl {
		return e.before, nil
	}
	ch := r.loads.DoChan(user, func() (any, error) { return r.load(user) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return time.Time{}, res.Err
		}
		return res.Val.(time.Time), nil
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("read revocation: %w", ctx.Err())
	}
}

// load reads user's state and caches it. It runs on behalf of every caller
// waiting for the same user, so its deadline is its own, not one caller's.
func (r *Revocations) load(user string) (time.Time, error) {
	r.mu.Lock()
	epoch := r.epoch
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	var before time.Time
	err := r.db.QueryRow(ctx, `SELECT revoked_before FROM user_revocations WHERE user_id = $1`, user).Scan(&before)
	if errors.Is(err, pgx.ErrNoRows) {
		before, err = time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read revocation: %w", err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.cache.Peek(user); ok && e.before.After(before) {
		before = e.before // a notification overtook the read
	}
	if r.epoch == epoch {
		r.cache.Add(user, revocationEntry{before: before, at: r.now()})
	}
	return before, nil
}

// learnLocked merges a revocation into the cache. The time only moves
// forward, so a stale read that lands later never hides a newer one.
func (r *Revocations) learnLocked(user string, before time.Time) {
	if e, ok := r.cache.Peek(user); ok && e.before.After(before) {
		before = e.before
	}
	r.cache.Add(user, revocationEntry{before: before, at: r.now()})
}

// Purge forgets every cached state: the next check of each user reads
// Postgres again. Reads already in flight do not fill the cache.
func (r *Revocations) Purge() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch++
	r.cache.Purge()
}

// HandleNotification applies one notification of [RevocationChannel] to the
// cache and passes it to OnRevoke (it is a pgxlisten.Handler).
func (r *Revocations) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	us, user, ok := strings.Cut(n.Payload, ":")
	micros, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || user == "" {
		return fmt.Errorf("bad revocation payload %q", n.Payload)
	}
	before := time.UnixMicro(micros)
	r.mu.Lock()
	r.learnLocked(user, before)
	r.mu.Unlock()
	if r.onRevoke != nil {
		r.onRevoke(user, before)
	}
	return nil
}

// HandleBacklog runs after every successful LISTEN (it is a
// pgxlisten.BacklogHandler). Notifications sent while the connection was
// down are lost, so every cached state is forgotten and read again on its
// next use.
func (r *Revocations) HandleBacklog(context.Context, string, *pgx.Conn) error {
	r.Purge()
	return nil
}

// Check refuses id when its user signed out everywhere after its token was
// issued: a token whose iat is before revoked_before, or that has no iat
// while the user has a revocation, gets CodeUnauthorized. When the state is
// unknown (not cached, or cached too long ago, and Postgres does not
// answer) it gets CodeUnavailable: a token is never let through unchecked.
func (r *Revocations) Check(ctx context.Context, id Identity) error {
	before, err := r.RevokedBefore(ctx, id.UserID)
	if err != nil {
		reqlog.Logger(ctx).WarnContext(ctx, "revocation state unknown; token refused for now", "err", err)
		return tasksync.Errorf(tasksync.CodeUnavailable, "cannot check the token right now; retry")
	}
	var reject string
	switch {
	case before.IsZero():
		return nil
	case id.IssuedAt.IsZero():
		reject = "token has no issue time and its user signed out everywhere"
	case id.IssuedAt.Before(before):
		reject = "token revoked: signed out everywhere"
	default:
		return nil
	}
	reqlog.Logger(ctx).DebugContext(ctx, "bearer token rejected", "reason", reject,
		slog.Time("iat", id.IssuedAt), slog.Time("revoked_before", before))
	return tasksync.Errorf(tasksync.CodeUnauthorized, "%s", reject)
}

// Verifier returns a [TokenVerifier] that verifies with next and then runs
// [Revocations.Check] on the identity. Every path that takes a
// TokenVerifier (REST, socket upgrade, auth.refresh, /mcp) gets the check
// by being given this one.
func (r *Revocations) Verifier(next TokenVerifier) TokenVerifier {
	return revokingVerifier{next: next, revocations: r}
}

type revokingVerifier struct {
	next        TokenVerifier
	revocations *Revocations
}

func (v revokingVerifier) Verify(ctx context.Context, raw string) (Identity, error) {
	id, err := v.next.Verify(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	if err := v.revocations.Check(ctx, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}
