package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Model is one language model call: the turn loop ([Agent]) calls it once
// per round and runs the tool calls it asks for. [OpenAI] (any
// OpenAI-compatible endpoint) and [Offline] (the built-in assistant for
// the seed's example commands) implement it, so both share the loop, the
// tools, storage and streaming.
type Model interface {
	// Complete streams the reply to req: every piece of text goes to
	// onText as it arrives, in order, from the calling goroutine; the
	// returned reply holds the whole text and the tool calls. On error the
	// text already passed to onText is the partial answer. Complete must
	// return promptly once ctx is done, with an error wrapping ctx's.
	Complete(ctx context.Context, req ModelRequest, onText func(string)) (ModelReply, error)
	// Name identifies the model in chat.started and logs.
	Name() string
}

// Role is who wrote a message.
type Role string

// The roles of messages.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// ModelRequest is the input of one model call.
type ModelRequest struct {
	// System is the system prompt.
	System string
	// Messages is the conversation so far, oldest first: the history
	// window, the user's new message and this turn's earlier rounds.
	Messages []ModelMessage
	// Tools the model may call; empty on the last allowed round, which
	// must answer in text.
	Tools []ToolSpec
	// Now and Zone are the turn's time and the user's time zone (never
	// nil: UTC when the client sent none), for a model that reads dates
	// itself ([Offline]); a language model gets them in System.
	Now  time.Time
	Zone *time.Location
}

// ModelMessage is one message of a [ModelRequest].
type ModelMessage struct {
	Role    Role
	Content string
	// ToolCalls are the calls an assistant message asked for.
	ToolCalls []ModelToolCall
	// ToolCallID is the call a tool message answers.
	ToolCallID string
}

// ModelToolCall is a tool call as the model made it.
type ModelToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON text the model produced (not necessarily
	// valid JSON: the tools report bad arguments back to the model).
	Arguments string
}

// ModelReply is what one model call produced.
type ModelReply struct {
	Text      string
	ToolCalls []ModelToolCall
	// FinishReason is the model's: stop, tool_calls, length, ...
	FinishReason string
}

// ModelError is a model failure with a code for chat.error and a message
// that is safe to show to the user.
type ModelError struct {
	Code    ErrorCode
	Message string
	Err     error // the cause, for logs
}

func (e *ModelError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *ModelError) Unwrap() error { return e.Err }

// argumentsJSON returns a model's arguments text as JSON for storage and
// frames: an object, re-encoded, when the text is one; otherwise a JSON
// string holding the text (a model may stop mid-argument when cancelled).
// Re-encoding matters: Postgres jsonb refuses \u0000 and lone surrogate
// escapes that JSON parsers accept, and one bad argument must not keep a
// turn from being stored.
func argumentsJSON(text string) json.RawMessage {
	t := strings.TrimSpace(text)
	if t == "" {
		return json.RawMessage(`{}`)
	}
	if t[0] == '{' {
		dec := json.NewDecoder(strings.NewReader(t))
		dec.UseNumber()
		var v map[string]any
		if dec.Decode(&v) == nil {
			if _, err := dec.Token(); err == io.EOF {
				if b, err := json.Marshal(v); err == nil && !bytes.Contains(b, []byte(`\u0000`)) {
					return b
				}
			}
		}
	}
	b, _ := json.Marshal(storable(text))
	return b
}

// argumentsText is the inverse of argumentsJSON, for replaying history to a
// model.
func argumentsText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	if len(raw) == 0 {
		return "{}"
	}
	return string(raw)
}

var (
	// errCancelled is the cause of a turn cancelled by the user.
	errCancelled = errors.New("chat: cancelled by the user")
	// errShutdown is the cause of a turn stopped by Service.Stop.
	errShutdown = errors.New("chat: server shutting down")
	// errTurnDeadline is the cause of a turn that ran past its deadline.
	errTurnDeadline = errors.New("chat: turn deadline exceeded")
	// errModelTimeout is the cause of one model call past CHAT_MODEL_TIMEOUT.
	errModelTimeout = errors.New("chat: model call timed out")
)
