package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"

	"tasksync"
	"tasksync/auth"
	"tasksync/internal/testdb"
)

// code returns the code of a *tasksync.Error, "" for nil, and fails the
// test for any other error.
func code(t testing.TB, err error) tasksync.Code {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *tasksync.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *tasksync.Error", err, err)
	}
	return e.Code
}

func newRevocations(t testing.TB, db auth.RowQuerier, cfg auth.RevocationConfig) *auth.Revocations {
	t.Helper()
	r, err := auth.NewRevocations(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// nextSecond is the first whole second at or after tm.
func nextSecond(tm time.Time) time.Time {
	s := tm.Truncate(time.Second)
	if s.Before(tm) {
		s = s.Add(time.Second)
	}
	return s
}

// TestRevocationRule: after Revoke, a token of the user is refused when
// its iat is before revoked_before (whole seconds: one from the sign-out's
// own second is refused too) or when it has no iat; a later iat passes;
// other users are not affected. A second instance with an empty cache
// reads the same answer from Postgres.
func TestRevocationRule(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	r := newRevocations(t, db.Pool, auth.RevocationConfig{})
	ctx := t.Context()

	// No revocation: every token passes, with or without iat.
	for _, id := range []auth.Identity{{UserID: "u"}, {UserID: "u", IssuedAt: time.Unix(1, 0)}} {
		if err := r.Check(ctx, id); err != nil {
			t.Fatalf("before any sign-out, %+v: %v", id, err)
		}
	}

	rb, err := r.Revoke(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	other := newRevocations(t, db.Pool, auth.RevocationConfig{}) // another instance: nothing cached
	tests := []struct {
		name string
		id   auth.Identity
		want tasksync.Code
	}{
		{"issued an hour before", auth.Identity{UserID: "u", IssuedAt: rb.Add(-time.Hour).Truncate(time.Second)}, tasksync.CodeUnauthorized},
		{"issued in the sign-out's second", auth.Identity{UserID: "u", IssuedAt: rb.Truncate(time.Second)}, tasksync.CodeUnauthorized},
		{"no iat", auth.Identity{UserID: "u"}, tasksync.CodeUnauthorized},
		{"issued the next second", auth.Identity{UserID: "u", IssuedAt: rb.Truncate(time.Second).Add(time.Second)}, ""},
		{"issued later", auth.Identity{UserID: "u", IssuedAt: rb.Add(time.Hour)}, ""},
		{"another user, no iat", auth.Identity{UserID: "v"}, ""},
	}
	if rb.Equal(rb.Truncate(time.Second)) {
		tests[1].want = "" // the sign-out fell on a whole second: iat == revoked_before passes
	}
	for _, tc := range tests {
		for name, rv := range map[string]*auth.Revocations{"this instance": r, "another instance": other} {
			if got := code(t, rv.Check(ctx, tc.id)); got != tc.want {
				t.Errorf("%s, %s: %q, want %q", name, tc.name, got, tc.want)
			}
		}
	}

	// Signing out again moves the time forward, never back.
	rb2, err := other.Revoke(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if rb2.Before(rb) {
		t.Fatalf("second sign-out %v is before the first %v", rb2, rb)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE user_revocations SET revoked_before = revoked_before - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	if rb3, err := other.Revoke(ctx, "u"); err != nil || rb3.Before(rb2) {
		t.Fatalf("sign-out after a clock step back: %v %v (was %v)", rb3, err, rb2)
	}
}

// TestVerifierIssuedAt: the identity carries iat, in whole seconds like
// the claim (a fractional iat is truncated), and zero without one.
func TestVerifierIssuedAt(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: secret})
	for _, tc := range []struct {
		iat  any
		want time.Time
	}{{t0.Unix(), t0}, {float64(t0.Unix()) + 0.75, t0}, {nil, time.Time{}}} {
		id, err := v.Verify(t.Context(), signHS256(t, secret, "", with(claimsFor("u"), "iat", tc.iat)))
		if err != nil {
			t.Fatal(err)
		}
		if !id.IssuedAt.Equal(tc.want) {
			t.Errorf("iat %v: IssuedAt %v, want %v", tc.iat, id.IssuedAt, tc.want)
		}
	}
}

// countingDB counts the queries that reach the database.
type countingDB struct {
	auth.RowQuerier
	n atomic.Int64
}

func (c *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n.Add(1)
	return c.RowQuerier.QueryRow(ctx, sql, args...)
}

// TestRevocationNotification: two instances on one database, the second
// listening on RevocationChannel with pgxlisten (as realtime.Listener
// does). A sign-out on the first reaches the second's OnRevoke with the
// exact stored time and updates its cache without a query; so does a
// revocation written by hand with plain SQL.
func TestRevocationNotification(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := t.Context()
	a := newRevocations(t, db.Pool, auth.RevocationConfig{})
	type revoked struct {
		user   string
		before time.Time
	}
	got := make(chan revoked, 10)
	bdb := &countingDB{RowQuerier: db.Pool}
	b := newRevocations(t, bdb, auth.RevocationConfig{OnRevoke: func(user string, before time.Time) { got <- revoked{user, before} }})

	listening := make(chan struct{}, 1)
	l := &pgxlisten.Listener{Connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, db.URL) }}
	l.Handle(auth.RevocationChannel, backlogSignal{b, listening})
	lctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Listen(lctx) }()
	t.Cleanup(func() { stop(); <-done })
	wait(t, "LISTEN", listening)

	old := auth.Identity{UserID: "u", IssuedAt: time.Now().Add(-time.Minute).Truncate(time.Second)}
	if err := b.Check(ctx, old); err != nil { // caches "no revocation"
		t.Fatal(err)
	}
	queries := bdb.n.Load()

	rb, err := a.Revoke(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if n := wait(t, "OnRevoke", got); n.user != "u" || !n.before.Equal(rb) {
		t.Fatalf("OnRevoke(%q, %v), want (u, %v)", n.user, n.before, rb)
	}
	if c := code(t, b.Check(ctx, old)); c != tasksync.CodeUnauthorized {
		t.Fatalf("after the notification: %q", c)
	}
	if bdb.n.Load() != queries {
		t.Fatal("the check after the notification queried Postgres")
	}

	// An operator revokes a user by hand.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO user_revocations VALUES ('by:hand', '2030-01-02 03:04:05.123456+00')`); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	if n := wait(t, "OnRevoke", got); n.user != "by:hand" || !n.before.Equal(want) {
		t.Fatalf("OnRevoke(%q, %v), want (by:hand, %v)", n.user, n.before, want)
	}
}

// wait receives from ch, failing the test after 20s.
func wait[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20s", what)
		panic("unreachable")
	}
}

// backlogSignal passes a pgxlisten handler through and signals each
// backlog call (the LISTEN is in place then).
type backlogSignal struct {
	*auth.Revocations
	ch chan struct{}
}

func (b backlogSignal) HandleBacklog(ctx context.Context, channel string, conn *pgx.Conn) error {
	err := b.Revocations.HandleBacklog(ctx, channel, conn)
	select {
	case b.ch <- struct{}{}:
	default:
	}
	return err
}

// TestRevocationBacklogForgets: a revocation whose notification was lost
// (written while nobody listened) is seen after HandleBacklog, which the
// LISTEN loop calls after every reconnect.
func TestRevocationBacklogForgets(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := t.Context()
	r := newRevocations(t, db.Pool, auth.RevocationConfig{})
	old := auth.Identity{UserID: "u", IssuedAt: time.Now().Add(-time.Minute).Truncate(time.Second)}
	if err := r.Check(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := newRevocations(t, db.Pool, auth.RevocationConfig{}).Revoke(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, old); err != nil {
		t.Fatalf("the cached state should still be used until the backlog step: %v", err)
	}
	if err := r.HandleBacklog(ctx, auth.RevocationChannel, nil); err != nil {
		t.Fatal(err)
	}
	if c := code(t, r.Check(ctx, old)); c != tasksync.CodeUnauthorized {
		t.Fatalf("after the backlog step: %q", c)
	}
}

// TestRevocationDatabaseDown: with Postgres unreachable, a fresh cached
// state is still used (a revoked token stays refused, a known user keeps
// working), while a user whose state is unknown or cached too long ago is
// refused with unavailable (503 through the middleware), never let
// through.
func TestRevocationDatabaseDown(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Pointer[time.Time]
	setNow := func(tm time.Time) { now.Store(&tm) }
	setNow(time.Now())
	r := newRevocations(t, pool, auth.RevocationConfig{CacheTTL: time.Minute, QueryTimeout: 2 * time.Second,
		Now: func() time.Time { return *now.Load() }})
	if _, err := r.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, auth.Identity{UserID: "known"}); err != nil {
		t.Fatal(err)
	}
	pool.Close() // Postgres is unreachable from here on

	if _, err := r.Revoke(ctx, "known"); err == nil {
		t.Fatal("Revoke succeeded without a database")
	}
	for _, tc := range []struct {
		id   auth.Identity
		want tasksync.Code
	}{
		{auth.Identity{UserID: "known"}, ""},
		{auth.Identity{UserID: "gone", IssuedAt: time.Unix(1, 0)}, tasksync.CodeUnauthorized},
		{auth.Identity{UserID: "stranger"}, tasksync.CodeUnavailable},
	} {
		if got := code(t, r.Check(ctx, tc.id)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.id.UserID, got, tc.want)
		}
	}

	// Through the middleware: 503 for the unknown user, 401 for the
	// revoked token, 200 for the known user.
	v := r.Verifier(verifierFunc(func(_ context.Context, raw string) (auth.Identity, error) {
		return auth.Identity{UserID: raw}, nil
	}))
	h := auth.Middleware(v)(echoUser)
	for user, want := range map[string]int{"known": 200, "gone": 401, "stranger": 503} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+user)
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s through the middleware: %d %s, want %d", user, rec.Code, rec.Body, want)
		}
		if want == 503 && decodeError(t, rec.Body.String()).Code != tasksync.CodeUnavailable {
			t.Errorf("%s: body %s", user, rec.Body)
		}
	}

	// Past the TTL the cached state is not trusted any more.
	setNow(time.Now().Add(2 * time.Minute))
	if got := code(t, r.Check(ctx, auth.Identity{UserID: "known"})); got != tasksync.CodeUnavailable {
		t.Fatalf("known user past the TTL: %q", got)
	}
}

// fakeDB answers revocation reads from a function; writes are not used.
type fakeDB struct {
	n     atomic.Int64
	read  func(user string) (time.Time, error)
	calls chan string // when not nil, told of each read as it starts
}

func (f *fakeDB) QueryRow(_ context.Context, _ string, args ...any) pgx.Row {
	f.n.Add(1)
	user := args[0].(string)
	if f.calls != nil {
		f.calls <- user
	}
	before, err := f.read(user)
	return fakeRow{before, err}
}

type fakeRow struct {
	before time.Time
	err    error
}

func (r fakeRow) Scan(dest ...any) error {
	switch {
	case r.err != nil:
		return r.err
	case r.before.IsZero():
		return pgx.ErrNoRows
	}
	*dest[0].(*time.Time) = r.before
	return nil
}

// TestRevocationCacheBounds: the cache holds at most CacheSize users
// (least recently used go first) and trusts an entry for CacheTTL.
func TestRevocationCacheBounds(t *testing.T) {
	t.Parallel()
	db := &fakeDB{read: func(string) (time.Time, error) { return time.Time{}, nil }}
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	r := newRevocations(t, db, auth.RevocationConfig{CacheSize: 2, CacheTTL: time.Minute, Now: func() time.Time { return *now.Load() }})
	check := func(users ...string) {
		t.Helper()
		for _, u := range users {
			if err := r.Check(t.Context(), auth.Identity{UserID: u}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("a", "b", "a", "b")
	if n := db.n.Load(); n != 2 {
		t.Fatalf("%d queries for two users, want 2", n)
	}
	check("c", "b") // evicts a, the least recently used
	check("a")
	if n := db.n.Load(); n != 4 {
		t.Fatalf("%d queries, want 4 (a was evicted)", n)
	}
	later := start.Add(time.Minute)
	now.Store(&later)
	check("a")
	if n := db.n.Load(); n != 5 {
		t.Fatalf("%d queries, want 5 (a's entry is a minute old)", n)
	}

	if _, err := auth.NewRevocations(db, auth.RevocationConfig{CacheSize: -1}); err == nil {
		t.Fatal("a negative cache size was accepted")
	}
	if _, err := auth.NewRevocations(nil, auth.RevocationConfig{}); err == nil {
		t.Fatal("no database was accepted")
	}
}

// TestRevocationRaces: reads that were in flight when something newer
// happened never undo it. A notification that lands while a read is in
// flight wins over the read's older answer; a read that began before a
// backlog purge does not fill the cache.
func TestRevocationRaces(t *testing.T) {
	t.Parallel()
	rb := time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)
	old := auth.Identity{UserID: "u", IssuedAt: rb.Add(-time.Hour)}
	release := make(chan struct{})
	db := &fakeDB{calls: make(chan string, 100), read: func(string) (time.Time, error) {
		<-release
		return time.Time{}, nil // a read that began before the sign-out
	}}
	r := newRevocations(t, db, auth.RevocationConfig{})

	// 1. A notification lands while a read is in flight.
	errc := make(chan error, 1)
	go func() { errc <- r.Check(context.Background(), old) }()
	<-db.calls
	if err := r.HandleNotification(t.Context(), &pgconn.Notification{Channel: auth.RevocationChannel,
		Payload: fmt.Sprintf("%d:u", rb.UnixMicro())}, nil); err != nil {
		t.Fatal(err)
	}
	close(release)
	if c := code(t, <-errc); c != tasksync.CodeUnauthorized {
		t.Fatalf("the check in flight: %q", c)
	}
	if c := code(t, r.Check(t.Context(), old)); c != tasksync.CodeUnauthorized {
		t.Fatalf("the in-flight read undid the notification: %q", c)
	}

	// 2. A read in flight across a purge does not fill the cache.
	release2 := make(chan struct{})
	db.read = func(string) (time.Time, error) { <-release2; return time.Time{}, nil }
	r.Purge()
	go func() { errc <- r.Check(context.Background(), auth.Identity{UserID: "w"}) }()
	<-db.calls
	if err := r.HandleBacklog(t.Context(), auth.RevocationChannel, nil); err != nil {
		t.Fatal(err)
	}
	close(release2)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	before := db.n.Load()
	db.read = func(string) (time.Time, error) { return rb, nil } // the row written while nobody listened
	if c := code(t, r.Check(t.Context(), auth.Identity{UserID: "w", IssuedAt: rb.Add(-time.Hour)})); c != tasksync.CodeUnauthorized {
		t.Fatalf("the read from before the purge was cached: %q", c)
	}
	if db.n.Load() != before+1 {
		t.Fatal("no new query after the purge")
	}

	// A payload that is not "<micros>:<user>" is an error, and changes nothing.
	for _, p := range []string{"", "x:u", "123", "123:", ":u"} {
		if err := r.HandleNotification(t.Context(), &pgconn.Notification{Payload: p}, nil); err == nil {
			t.Errorf("payload %q accepted", p)
		}
	}
}
