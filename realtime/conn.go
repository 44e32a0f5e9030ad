package realtime

import (
	"context"

	"github.com/coder/websocket"
)

// Conn is what a session needs of its WebSocket: *websocket.Conn satisfies
// it, and the package's tests use a fake. As with coder/websocket, every
// method may be called concurrently with the others, except Read, which
// only the session's reader calls.
type Conn interface {
	// Read returns the next client message.
	Read(ctx context.Context) (websocket.MessageType, []byte, error)
	// Write sends one message.
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	// Ping sends a ping and waits for its pong (which the reader reads).
	Ping(ctx context.Context) error
	// Close sends a close frame and waits (bounded) for the peer's.
	Close(code websocket.StatusCode, reason string) error
	// CloseNow drops the connection without a close handshake.
	CloseNow() error
}

var _ Conn = (*websocket.Conn)(nil)
