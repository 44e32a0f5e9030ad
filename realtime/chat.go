package realtime

import (
	"context"
	"encoding/json"

	"tasksync"
)

// ChatRequest is a chat.send or chat.cancel frame, as the chat service
// sees it.
type ChatRequest struct {
	Type           string          // chat.send or chat.cancel
	ID             json.RawMessage // the client's request id, echoed in the reply
	SessionID      string
	ConversationID int64
	// Message is the raw JSON value of the frame's message (nil when
	// absent): decoding it into a string would hide invalid text, which
	// the chat service refuses.
	Message json.RawMessage
	// TZ is the raw JSON value of the frame's tz (nil when absent): the
	// user's time zone, which the chat service reads.
	TZ json.RawMessage
}

// ChatService runs assistant turns for sockets (package chat implements
// it; cmd/server plugs it in). Chat returns the reply to the request at
// once; the turn's stream reaches every session of the user through
// [Hub.PublishUser].
type ChatService interface {
	Chat(ctx context.Context, userID string, req ChatRequest) (reply any, err error)
}

// chatFrame serves chat.send and chat.cancel. The turn outlives the
// request, so the chat service gets the session's context, not the
// request's.
func (srv *Server) chatFrame(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if srv.chat == nil {
		return nil, tasksync.Errorf(tasksync.CodeUnavailable, "the chat assistant is not enabled on this server")
	}
	if f.Type == TypeChatSend {
		// The turn's frames come through the broker: let this session's
		// subscription take effect first, so that it sees them all.
		s.waitBroker(ctx)
	}
	reply, err := srv.chat.Chat(s.ctx, s.userID, ChatRequest{
		Type: f.Type, ID: f.ID, SessionID: s.id, ConversationID: f.ConversationID, Message: f.Message, TZ: f.TZ,
	})
	if err != nil {
		return nil, err
	}
	return encode(reply), nil
}
