package chat

import (
	"encoding/json"
)

// Event types: the "type" of socket frames and the SSE event names. Every
// turn emits chat.started first and exactly one of chat.done or chat.error
// last. docs/PROTOCOL.md (Chat) documents each field.
const (
	TypeStarted    = "chat.started"
	TypeDelta      = "chat.delta"
	TypeToolCall   = "chat.tool_call"
	TypeToolResult = "chat.tool_result"
	TypeDone       = "chat.done"
	TypeError      = "chat.error"
)

// ErrorCode says why a turn ended in chat.error, and what a client should
// do about it. The turn's assistant message is stored with status error and
// this code, so history shows the same thing.
type ErrorCode string

// The codes of chat.error.
const (
	// ErrModelUnavailable: the model endpoint could not be reached, was
	// overloaded (429) or failed (5xx). Retry later.
	ErrModelUnavailable ErrorCode = "model_unavailable"
	// ErrModelTimeout: the model did not finish within CHAT_MODEL_TIMEOUT
	// (or the whole turn ran past its deadline). Retry, perhaps with a
	// simpler request.
	ErrModelTimeout ErrorCode = "model_timeout"
	// ErrModel: the endpoint answered with an error (bad API key, unknown
	// model, an error event or a broken stream). Retrying rarely helps; the
	// operator should check OPENAI_* settings.
	ErrModel ErrorCode = "model_error"
	// ErrRoundLimit: the model kept calling tools past CHAT_MAX_ROUNDS.
	// Ask again in smaller steps.
	ErrRoundLimit ErrorCode = "round_limit"
	// ErrShuttingDown: the instance stopped while answering, or the
	// database was unreachable. Send the message again (another instance
	// will answer).
	ErrShuttingDown ErrorCode = "unavailable"
	// ErrInternal: a bug or an unexpected failure; details are only in the
	// server log.
	ErrInternal ErrorCode = "internal"
)

// Status is how a turn (and its assistant message) ended.
type Status string

// The statuses of assistant messages.
const (
	StatusComplete  Status = "complete"
	StatusCancelled Status = "cancelled"
	StatusError     Status = "error"
)

// Event is one thing a turn tells its followers. The concrete types below
// marshal to the frames of docs/PROTOCOL.md (Chat).
type Event interface {
	EventType() string
}

// Started opens every turn.
type Started struct {
	Type           string `json:"type"`
	ConversationID int64  `json:"conversation_id"`
	TurnID         string `json:"turn_id"`
	// MessageID is the stored user message.
	MessageID int64 `json:"message_id"`
	// Message is the user's text, so that other sessions can show it.
	Message string `json:"message"`
	// Created is true when the turn created the conversation.
	Created bool   `json:"created"`
	Title   string `json:"title"`
	// RequestID echoes the id of the chat.send frame that started the
	// turn; SessionID names that socket. Both are absent for REST turns.
	RequestID json.RawMessage `json:"request_id,omitempty"`
	SessionID string          `json:"session_id,omitempty"`
	Model     string          `json:"model"`
}

// Delta is a piece of the assistant's text, in order.
type Delta struct {
	Type           string `json:"type"`
	ConversationID int64  `json:"conversation_id"`
	TurnID         string `json:"turn_id"`
	Text           string `json:"text"`
}

// ToolCallEvent announces a tool call before it runs.
type ToolCallEvent struct {
	Type           string          `json:"type"`
	ConversationID int64           `json:"conversation_id"`
	TurnID         string          `json:"turn_id"`
	CallID         string          `json:"call_id"`
	Name           string          `json:"name"`
	Arguments      json.RawMessage `json:"arguments"`
}

// ToolResultEvent carries the result of a tool call.
type ToolResultEvent struct {
	Type           string          `json:"type"`
	ConversationID int64           `json:"conversation_id"`
	TurnID         string          `json:"turn_id"`
	CallID         string          `json:"call_id"`
	Name           string          `json:"name"`
	Result         json.RawMessage `json:"result"`
	IsError        bool            `json:"is_error"`
}

// Done ends a turn that completed or was cancelled; the assistant message
// is stored by then.
type Done struct {
	Type           string     `json:"type"`
	ConversationID int64      `json:"conversation_id"`
	TurnID         string     `json:"turn_id"`
	MessageID      int64      `json:"message_id"`
	Status         Status     `json:"status"`
	Text           string     `json:"text"`
	ToolCalls      []ToolCall `json:"tool_calls"`
}

// Failed ends a turn that failed (chat.error). MessageID is the stored
// assistant message (0 if even storing it failed); Text is the partial
// answer and ToolCalls the calls that ran before the failure.
type Failed struct {
	Type           string     `json:"type"`
	ConversationID int64      `json:"conversation_id"`
	TurnID         string     `json:"turn_id"`
	MessageID      int64      `json:"message_id"`
	Code           ErrorCode  `json:"code"`
	Message        string     `json:"message"`
	Text           string     `json:"text"`
	ToolCalls      []ToolCall `json:"tool_calls"`
}

func (*Started) EventType() string         { return TypeStarted }
func (*Delta) EventType() string           { return TypeDelta }
func (*ToolCallEvent) EventType() string   { return TypeToolCall }
func (*ToolResultEvent) EventType() string { return TypeToolResult }
func (*Done) EventType() string            { return TypeDone }
func (*Failed) EventType() string          { return TypeError }

// Terminal reports whether ev ends its turn.
func Terminal(ev Event) bool {
	switch ev.(type) {
	case *Done, *Failed:
		return true
	}
	return false
}

// Encode returns the frame of ev.
func Encode(ev Event) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		// Every field is a plain value or valid JSON we made.
		panic("chat: encode event: " + err.Error())
	}
	return b
}

// ToolCall is one tool call of a turn with its outcome, as stored in the
// assistant message and reported in chat.done and the REST response.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Result    json.RawMessage `json:"result"`
	IsError   bool            `json:"is_error,omitempty"`
}
