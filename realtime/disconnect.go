package realtime

import (
	"strconv"

	"github.com/coder/websocket"
)

// Close codes the server uses. The 4000-4999 range is reserved by RFC 6455
// for applications. docs/PROTOCOL.md has the same table, with what a client
// should do on each.
const (
	CloseNormal                              = websocket.StatusNormalClosure // 1000
	CloseGoingAway                           = websocket.StatusGoingAway     // 1001
	CloseTooBig                              = websocket.StatusMessageTooBig // 1009
	CloseInternal                            = websocket.StatusInternalError // 1011
	CloseUnauthorized   websocket.StatusCode = 4001
	CloseForbidden      websocket.StatusCode = 4003
	CloseSlowConsumer   websocket.StatusCode = 4008
	CloseTooManySockets websocket.StatusCode = 4009
	CloseSessionRevoked websocket.StatusCode = 4010
	CloseRateLimited    websocket.StatusCode = 4029
)

// Disconnect is why the server ends a session: the close code and the
// reason sent with it (at most 123 bytes, RFC 6455 5.5). The values below
// are the only ones the server sends; each says in its reason what the
// client should do.
type Disconnect struct {
	Code   websocket.StatusCode
	Reason string
}

// The server's disconnects, with what the client should do.
var (
	// DisconnectShutdown: this instance is stopping. Reconnect at once
	// (another instance answers) with since = last seq.
	DisconnectShutdown = Disconnect{CloseGoingAway, "server shutting down; reconnect"}
	// DisconnectInternal: the change log could not be read. Reconnect with
	// backoff and since.
	DisconnectInternal = Disconnect{CloseInternal, "could not read the change log; reconnect"}
	// DisconnectExpired: the token expired and no auth.refresh came in time.
	// Get a new token, then reconnect.
	DisconnectExpired = Disconnect{CloseUnauthorized, "token expired: reconnect with a new token"}
	// DisconnectForbidden: auth.refresh brought a token of another user.
	// Sign in again; do not reconnect with the old token.
	DisconnectForbidden = Disconnect{CloseForbidden, "token of another user"}
	// DisconnectSlow: frames that cannot be fetched again (replies,
	// presence, chat) did not fit the send queue, or a snapshot was not
	// read in time. Reconnect with since; read faster.
	DisconnectSlow = Disconnect{CloseSlowConsumer, "send queue overflow: reconnect with since"}
	// DisconnectTooManySockets: the user holds the maximum number of
	// sockets on this instance. Close another tab or device.
	DisconnectTooManySockets = Disconnect{CloseTooManySockets, "too many sockets for this user; close another tab or device"}
	// DisconnectRevoked: the user signed out everywhere. Sign in again.
	DisconnectRevoked = Disconnect{CloseSessionRevoked, "signed out everywhere"}
	// DisconnectRateLimited: the client kept sending after rate_limited
	// errors. Reconnect after a backoff and send less.
	DisconnectRateLimited = Disconnect{CloseRateLimited, "rate limit exceeded; reconnect later and send less"}
)

// codeLabel is the metrics label of a close code.
func codeLabel(code websocket.StatusCode) string { return strconv.Itoa(int(code)) }
