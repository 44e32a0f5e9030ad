package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"tasksync"
)

// Frame types sent by clients. docs/PROTOCOL.md documents each one.
const (
	TypePing        = "ping"
	TypeTaskCreate  = "task.create"
	TypeTaskUpdate  = "task.update"
	TypeTaskDone    = "task.complete"
	TypeTaskDelete  = "task.delete"
	TypeTaskList    = "task.list"
	TypeTaskHistory = "task.history"
	TypeTaskRestore = "task.restore"
	TypeSync        = "sync"
	TypeAuthRefresh = "auth.refresh"
	TypePresence    = "presence.list"
	TypeChatSend    = "chat.send"
	TypeChatCancel  = "chat.cancel"
)

// Frame types sent by the server.
const (
	TypeHello        = "hello"
	TypePong         = "pong"
	TypeReply        = "reply"
	TypeError        = "error"
	TypeTaskCreated  = "task.created"
	TypeTaskUpdated  = "task.updated"
	TypeTaskDeleted  = "task.deleted"
	TypeSnapshot     = "snapshot"
	TypeSynced       = "synced"
	TypePresenceInfo = "presence"
	TypeReminder     = "reminder"
)

// Limits on client frames beyond the read limit.
const (
	maxRequestID = 64
	maxFrameType = 32
)

// inFrame is every field any client frame may carry; each type reads the
// ones it needs. Nested objects stay raw until the handler knows the type.
type inFrame struct {
	Type string `json:"type"`
	// ID is any JSON string or number chosen by the client; replies echo
	// it verbatim.
	ID json.RawMessage `json:"id"`

	MutationID  string          `json:"mutation_id"`
	BaseVersion int             `json:"base_version"`
	TaskID      int64           `json:"task_id"`
	Task        json.RawMessage `json:"task"`
	Completed   *bool           `json:"completed"`
	Filter      json.RawMessage `json:"filter"`
	Since       *int64          `json:"since"`
	Token       string          `json:"token"`
	// Series is the scope of task.delete: "this" (default) or "all".
	Series string `json:"series"`
	// task.restore: the version to return to (absent: undelete);
	// task.history: how many entries at most.
	Version json.RawMessage `json:"version"`
	Limit   json.RawMessage `json:"limit"`

	// Chat (docs/PROTOCOL.md, chat section).
	ConversationID int64           `json:"conversation_id"`
	Message        json.RawMessage `json:"message"`
	TZ             json.RawMessage `json:"tz"`
}

// decodeFrame parses one client frame. Errors are *tasksync.Error values
// meant for an error frame; the id is returned whenever it could be read so
// that the error can name the request.
func decodeFrame(data []byte) (inFrame, error) {
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil {
		// Try to recover the id for the error reply.
		var probe struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(data, &probe) == nil && validID(probe.ID) {
			f.ID = probe.ID
		}
		f.Type = ""
		var typeErr *json.UnmarshalTypeError
		if asTypeError(err, &typeErr) && typeErr.Field != "" {
			return f, tasksync.Invalid(map[string]string{typeErr.Field: "has the wrong type"})
		}
		if !json.Valid(data) {
			return f, tasksync.Errorf(tasksync.CodeBadRequest, "the frame is not valid JSON")
		}
		return f, tasksync.Errorf(tasksync.CodeBadRequest, "the frame must be a JSON object")
	}
	if f.ID != nil && !validID(f.ID) {
		f.ID = nil
		return f, tasksync.Errorf(tasksync.CodeBadRequest, "id must be a string of at most %d bytes or a number", maxRequestID)
	}
	if f.Type == "" {
		return f, tasksync.Errorf(tasksync.CodeBadRequest, `the frame has no "type"`)
	}
	if len(f.Type) > maxFrameType {
		f.Type = f.Type[:maxFrameType]
	}
	return f, nil
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	e, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = e
	}
	return ok
}

// validID accepts a JSON string or number of bounded size as a request id.
func validID(id json.RawMessage) bool {
	if len(id) == 0 || len(id) > maxRequestID+2 {
		return false
	}
	switch id[0] {
	case '"':
		var s string
		return json.Unmarshal(id, &s) == nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		return json.Unmarshal(id, &n) == nil
	}
	return false
}

// filterValues turns the filter object of a task.list frame into query
// values, so that sockets and REST share one parser (tasks.ParseListQuery).
// Values may be strings, numbers, booleans or arrays of those.
func filterValues(raw json.RawMessage) (url.Values, error) {
	v := url.Values{}
	if len(raw) == 0 || string(raw) == "null" {
		return v, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, tasksync.Errorf(tasksync.CodeBadRequest, "filter must be an object")
	}
	for k, val := range m {
		var list []json.RawMessage
		if len(val) > 0 && val[0] == '[' {
			if err := json.Unmarshal(val, &list); err != nil {
				return nil, tasksync.Invalid(map[string]string{k: "must be a string, number or array of strings"})
			}
		} else {
			list = []json.RawMessage{val}
		}
		for _, item := range list {
			s, ok := scalarString(item)
			if !ok {
				return nil, tasksync.Invalid(map[string]string{k: "must be a string, number or array of strings"})
			}
			v.Add(k, s)
		}
	}
	return v, nil
}

func scalarString(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b), true
	}
	return "", false
}

// Event is one change-log entry, with its frame encoded once, when it is
// read, for every session that receives it. It is immutable once built.
type Event struct {
	UserID    string
	Seq       int64
	Op        string // created, updated, deleted
	TaskID    int64
	Task      json.RawMessage // nil for deletes
	CreatedAt time.Time       // commit-time clock of the writer (clock_timestamp())
	frame     []byte
}

// Frame returns the event as a server frame.
func (e *Event) Frame() []byte {
	if e.frame != nil {
		return e.frame
	}
	b, err := encodeEvent(e)
	if err != nil {
		panic(err) // only events built by hand (tests) get here
	}
	return b
}

// encodeEvent builds the frame of e; the task JSON comes from our own
// trigger, so an error means a corrupt row.
func encodeEvent(e *Event) ([]byte, error) {
	b := make([]byte, 0, 64+len(e.Task))
	b = append(b, `{"type":"task.`...)
	b = append(b, e.Op...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	if e.Task != nil {
		b = append(b, `,"task":`...)
		var err error
		if b, err = appendCompactJSON(b, e.Task); err != nil {
			return nil, fmt.Errorf("event %s/%d: invalid task JSON: %w", e.UserID, e.Seq, err)
		}
	} else {
		b = append(b, `,"task_id":`...)
		b = strconv.AppendInt(b, e.TaskID, 10)
	}
	return append(b, '}'), nil
}

var errBadJSON = errors.New("not one JSON object or array, or truncated")

// appendCompactJSON appends src, one JSON object or array, to b without
// the whitespace outside its strings.
//
// src is JSON that Postgres printed (the change log's jsonb column, the
// trigger's json_build_object), so it is valid; Postgres puts a space after
// every ':' and ',' (json_build_object one before ':' too), which a frame
// need not carry. This does what json.Compact does to valid JSON, without
// its validating state machine, which was a third of the server's CPU in a
// catch-up replay (docs/BENCHMARKS.md). It still refuses what a truncated
// or corrupted row would look like: an unterminated string, unbalanced
// brackets, nothing at all, or more than one value.
func appendCompactJSON(b, src []byte) ([]byte, error) {
	depth, start, ended := 0, 0, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			b = append(b, src[start:i]...)
			start = i + 1
			continue
		}
		if depth == 0 && (ended || (c != '{' && c != '[')) {
			return b, errBadJSON
		}
		switch c {
		case '"':
			// To the closing quote: one not escaped by an odd number of
			// backslashes.
			for {
				k := bytes.IndexByte(src[i+1:], '"')
				if k < 0 {
					return b, errBadJSON
				}
				i += 1 + k
				n := 0
				for src[i-1-n] == '\\' {
					n++
				}
				if n%2 == 0 {
					break
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				ended = true
			}
		}
	}
	if !ended {
		return b, errBadJSON
	}
	return append(b, src[start:]...), nil
}

// errorFrame is the server's answer to a request that failed.
type errorFrame struct {
	Type    string            `json:"type"`
	ID      json.RawMessage   `json:"id,omitempty"`
	Re      string            `json:"re,omitempty"` // the request type
	Code    tasksync.Code     `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	// Task is the current task on version_mismatch.
	Task any `json:"task,omitempty"`
	// RetryAfterMS is set on rate_limited.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

func encodeError(id json.RawMessage, re string, err error) []byte {
	e := tasksync.AsError(err)
	b, _ := json.Marshal(errorFrame{Type: TypeError, ID: id, Re: re, Code: e.Code, Message: e.Message, Fields: e.Fields, Task: e.Current})
	return b
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode frame: %v", err))
	}
	return b
}
