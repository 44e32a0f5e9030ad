// Package auth verifies bearer tokens and tells handlers who is calling.
//
// # What it owns
//
//   - [Verifier]: checks a JWT and returns the caller's [Identity]. Two kinds
//     of token are accepted, each only with its own key material:
//     HS256 tokens signed with the shared secret (the app's own and dev
//     tokens, see [IssueHS256]), and asymmetric tokens (EdDSA, ES256, ES512,
//     RS256, PS256) signed by a key published in a JWKS, such as Better Auth's
//     {BASE_URL}/api/auth/jwks. JWKS keys are chosen by the token's "kid"
//     and each key accepts only one algorithm family (see [Config]).
//   - [Middleware]: turns "Authorization: Bearer ..." into an [Identity] in
//     the request context, or answers 401 with a WWW-Authenticate header.
//   - [RequirePathUser]: the check that /api/{user_id}/... belongs to the
//     caller (403 otherwise).
//   - [IssueHS256]: minting short-lived HS256 tokens for development and
//     tests.
//   - [Revocations]: "sign out everywhere". Per user, the time before which
//     the user's tokens are refused, stored in Postgres and cached on every
//     instance; [Revocations.Verifier] wraps a TokenVerifier with the check.
//
// It knows nothing about tasks, chat or sockets; packages that need the
// caller call [FromContext], or take a [TokenVerifier] to check tokens that
// arrive in-band (for example a socket's token refresh frame).
//
// Every verification failure is a *tasksync.Error with code
// tasksync.CodeUnauthorized and a short message that is safe to show. The
// token itself is never logged or echoed; the underlying cause is logged at
// debug level through the request's logger (internal/reqlog).
//
// # Concurrency
//
// A *Verifier is safe for concurrent use by any number of goroutines; it is
// not changed after [NewVerifier] returns, apart from the JWKS cache, which
// has its own locking. *Revocations is too (one mutex around its cache; no
// query runs under it) and starts no goroutine. The middlewares hold no
// state of their own.
//
// # Sign out everywhere
//
// [Revocations.Revoke] stores revoked_before = now (the database's clock, in
// microseconds) in user_revocations; a trigger sends a NOTIFY on
// [RevocationChannel] in the same transaction. From then on a token of that
// user is refused (401 "token revoked") when its iat is before
// revoked_before, and also when it has no iat at all; tokens of users who
// never signed out everywhere are not affected, with or without iat.
//
// iat has whole seconds, so a token issued in the same second as the
// sign-out cannot be told from one issued just before it: it is refused
// too. Refusing is the safe side; a client that signs in again right away
// may see one 401 and gets a working token a second later. The rule
// assumes that the identity provider's clock and the database's agree to
// within about a second; no leeway is applied to it.
//
// Every instance caches each user's state (including "no revocation", the
// common case, so a request costs no query) in a bounded LRU
// ([DefaultRevocationCacheSize] users) whose entries are trusted for
// [DefaultRevocationCacheTTL]. The LISTEN loop (realtime.Listener in this
// service) hands notifications to [Revocations.HandleNotification], which
// updates the cache at once and calls [RevocationConfig].OnRevoke, and
// calls [Revocations.HandleBacklog] after every (re)LISTEN, which forgets
// the whole cache because notifications sent while it was disconnected
// are lost. Cached times only move forward, so a read that started before
// a notification cannot undo it.
//
// When Postgres cannot be reached, a user whose state was cached less than
// the TTL ago is answered from the cache (no new revocation can be stored
// meanwhile either); a user whose state is unknown or older than the TTL is
// refused with CodeUnavailable (503 on REST): a token is never let through
// unchecked.
//
// # Lifetime of the JWKS refresh
//
// When [Config].JWKSURL is set, [NewVerifier] fetches the JWKS once (bounded
// by the HTTP timeout; a failure is logged, not returned, so that the service
// can start before its identity provider) and starts one background
// goroutine, owned by the JWKS library, that refetches it every
// [Config].RefreshInterval. That goroutine ends when the ctx given to
// [NewVerifier] is cancelled; the caller that created the Verifier cancels it
// at shutdown. There is no Close and nothing waits for the goroutine: it holds
// no resource except an idle ticker and, at most, one in-flight HTTP request
// bounded by the timeout. A Verifier keeps verifying with its cached keys
// after that ctx ends, and unknown-kid refreshes (which run in the caller's
// ctx) keep working.
//
// A token whose kid is not in the cache triggers an immediate refetch, at
// most once per [Config].MinRefreshInterval across the whole Verifier, so
// that key rotation (or a restarted in-memory issuer) works without a
// restart while a stream of made-up kids cannot flood the identity provider.
package auth
