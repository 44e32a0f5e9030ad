package realtime

import "github.com/coder/websocket"

// Close codes the server uses, with what a client should do on each. The
// 4000-4999 range is reserved by RFC 6455 for applications. The same table
// is in docs/PROTOCOL.md.
const (
	// CloseNormal: the server ended the session on request. Do not reconnect.
	CloseNormal = websocket.StatusNormalClosure // 1000
	// CloseGoingAway: this instance is shutting down. Reconnect at once
	// (another instance will answer) with since = last seq.
	CloseGoingAway = websocket.StatusGoingAway // 1001
	// CloseTooBig: a frame exceeded the read limit in hello.limits.
	// Reconnect, and send smaller frames.
	CloseTooBig = websocket.StatusMessageTooBig // 1009
	// CloseInternal: an unexpected server failure. Reconnect with backoff.
	CloseInternal = websocket.StatusInternalError // 1011

	// CloseUnauthorized: the token expired (and no auth.refresh came in
	// time) or was revoked. Get a new token, then reconnect.
	CloseUnauthorized websocket.StatusCode = 4001
	// CloseForbidden: auth.refresh brought a token of another user. Sign
	// in again; do not reconnect with the old token.
	CloseForbidden websocket.StatusCode = 4003
	// CloseSlowConsumer: the client did not read fast enough and its send
	// queue overflowed. Reconnect with since = last seq applied.
	CloseSlowConsumer websocket.StatusCode = 4008
	// CloseTooManySockets: the user already holds the maximum number of
	// sockets on this instance. Close another tab or device; retry later.
	CloseTooManySockets websocket.StatusCode = 4009
	// CloseSessionRevoked: all sessions of the user were closed on request
	// (sign-out everywhere). Sign in again before reconnecting.
	CloseSessionRevoked websocket.StatusCode = 4010
	// CloseRateLimited: the client kept sending after rate_limited errors.
	// Reconnect after a backoff and send less.
	CloseRateLimited websocket.StatusCode = 4029
)
