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
// has its own locking. The middlewares hold no state of their own.
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
