package chat

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"tasksync"
	"tasksync/auth"
	"tasksync/internal/httpjson"
	"tasksync/internal/reqlog"
	"tasksync/internal/utf8json"
	"tasksync/tasks"
	"tasksync/tasks/quickadd"
)

// Handler serves the chat REST API: POST /api/{user_id}/chat (JSON, or an
// SSE stream of the turn's events with Accept: text/event-stream) and the
// conversation history under /api/{user_id}/conversations.
type Handler struct {
	Service *Service
	// MaxBody limits request bodies; 0 means httpjson.DefaultMaxBody.
	MaxBody int64
	// KeepAlive is the interval of SSE comment lines that keep proxies
	// from closing a quiet stream; 0 means 15s.
	KeepAlive time.Duration
}

// Register adds the chat routes to mux, each wrapped by mw (authentication,
// the path-user check and rate limiting are the caller's to supply).
func (h *Handler) Register(mux *http.ServeMux, mw func(http.Handler) http.Handler) {
	routes := map[string]http.HandlerFunc{
		"POST /api/{user_id}/chat":                       h.chat,
		"GET /api/{user_id}/conversations":               h.conversations,
		"GET /api/{user_id}/conversations/{id}":          h.conversation,
		"GET /api/{user_id}/conversations/{id}/messages": h.messages,
	}
	for pattern, fn := range routes {
		mux.Handle(pattern, mw(fn))
	}
}

// History limits.
const (
	DefaultConversations = 50
	MaxConversations     = 200
	DefaultMessages      = 100
	MaxMessages          = 500
)

// ChatInput is the body of POST /api/{user_id}/chat.
type ChatInput struct {
	ConversationID int64
	Message        string
	// Zone is the user's time zone ("tz"), the one dates in the message
	// are read in; nil when not sent (UTC).
	Zone *time.Location
}

// DecodeZone reads the optional "tz" of a chat request (REST body or
// chat.send frame) from its raw JSON value: an IANA zone name, or absent
// or null for none (nil).
func DecodeZone(raw json.RawMessage) (*time.Location, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return nil, tasksync.Invalid(map[string]string{"tz": "must be an IANA time zone name like Europe/Berlin, or null"})
	}
	loc, err := quickadd.LoadZone(name)
	if err != nil {
		return nil, tasksync.Invalid(map[string]string{"tz": err.Error()})
	}
	return loc, nil
}

// DecodeMessage reads the message of POST /api/{user_id}/chat or of a
// chat.send frame from its raw JSON value (nil when absent) and validates
// it with [ValidateMessage]. It sees what decoding into a string would
// hide: invalid UTF-8 bytes and lone surrogate escapes, which
// encoding/json replaces with U+FFFD, are refused instead of stored.
func DecodeMessage(raw json.RawMessage) (string, error) {
	var msg string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", tasksync.Invalid(map[string]string{"message": "is required: the text to send to the assistant"})
	case json.Unmarshal(raw, &msg) != nil:
		return "", tasksync.Invalid(map[string]string{"message": "must be a string"})
	case !utf8json.Valid(raw):
		return "", tasksync.Invalid(map[string]string{"message": notText})
	}
	return ValidateMessage(msg)
}

// DecodeChatInput reads {"conversation_id"?: int, "message": string,
// "tz"?: string}.
// Unknown keys are ignored; every bad field is reported at once (422). The
// message is read by [DecodeMessage].
func DecodeChatInput(raw map[string]json.RawMessage) (ChatInput, error) {
	var in ChatInput
	bad := map[string]string{}
	if v, ok := raw["conversation_id"]; ok && string(v) != "null" && string(v) != "0" {
		// A JSON number in its plain spelling: not -0, 1e0 or 1.0.
		id, ok := tasks.ParseID(string(v))
		if !ok {
			bad["conversation_id"] = "must be the positive id of one of your conversations, or absent to start one"
		}
		in.ConversationID = id
	}
	if msg, err := DecodeMessage(raw["message"]); err != nil {
		for k, m := range tasksync.AsError(err).Fields {
			bad[k] = m
		}
	} else {
		in.Message = msg
	}
	if loc, err := DecodeZone(raw["tz"]); err != nil {
		for k, m := range tasksync.AsError(err).Fields {
			bad[k] = m
		}
	} else {
		in.Zone = loc
	}
	if len(bad) > 0 {
		return ChatInput{}, tasksync.Invalid(bad)
	}
	return in, nil
}

// Response is the JSON answer of POST /api/{user_id}/chat (the seed's
// contract: conversation_id, response, tool_calls, plus the rest).
type Response struct {
	ConversationID int64      `json:"conversation_id"`
	Response       string     `json:"response"`
	ToolCalls      []ToolCall `json:"tool_calls"`
	TurnID         string     `json:"turn_id"`
	// MessageID is the stored assistant message.
	MessageID int64         `json:"message_id"`
	Status    Status        `json:"status"`
	Error     *MessageError `json:"error,omitempty"`
}

func wantsSSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	user, err := auth.Caller(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := httpjson.Read(w, r, &raw, h.MaxBody); err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if raw == nil {
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeBadRequest, "the body must be a JSON object"))
		return
	}
	in, err := DecodeChatInput(raw)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	// The turn is cancelled when the client goes away (Bind): nobody would
	// read the answer, and it is stored as cancelled with what was written.
	turn, err := h.Service.Start(r.Context(), StartRequest{
		UserID: user, ConversationID: in.ConversationID, Message: in.Message, Zone: in.Zone, Follow: true, Bind: r.Context(),
	})
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if wantsSSE(r) {
		h.stream(w, r, turn)
		return
	}
	for {
		events, more := turn.Take()
		for _, ev := range events {
			switch ev := ev.(type) {
			case *Done:
				httpjson.Write(w, http.StatusOK, Response{ConversationID: ev.ConversationID, Response: ev.Text,
					ToolCalls: ev.ToolCalls, TurnID: ev.TurnID, MessageID: ev.MessageID, Status: ev.Status})
				return
			case *Failed:
				// The turn ran and its outcome is stored: that is a
				// successful request whose answer is an error. response
				// is what there is to show: the partial text, or the error.
				text := ev.Text
				if text == "" {
					text = ev.Message
				}
				httpjson.Write(w, http.StatusOK, Response{ConversationID: ev.ConversationID, Response: text,
					ToolCalls: ev.ToolCalls, TurnID: ev.TurnID, MessageID: ev.MessageID, Status: StatusError,
					Error: &MessageError{Code: ev.Code, Message: ev.Message}})
				return
			}
		}
		if !more {
			return // unreachable: the last event is Done or Failed
		}
		select {
		case <-turn.Ready():
		case <-r.Context().Done():
			return
		}
	}
}

// stream writes the turn's events as server-sent events, one per event
// with the frame's type as the event name and its JSON as data, flushed
// one by one, with a comment line every KeepAlive while nothing happens.
// It ends after chat.done or chat.error.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, turn *Turn) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		reqlog.Logger(r.Context()).WarnContext(r.Context(), "chat: SSE needs a flushable response", "err", err)
	}
	every := h.KeepAlive
	if every <= 0 {
		every = 15 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		events, more := turn.Take()
		for _, ev := range events {
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.EventType(), Encode(ev)); err != nil {
				return // the client is gone; Bind cancels the turn
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if Terminal(ev) {
				return
			}
		}
		if !more {
			return
		}
		select {
		case <-turn.Ready():
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// pathID reads {id}; anything that is not an id in its canonical spelling
// (tasks.ParseID) cannot name a conversation, so it is a 404 like any other conversation that is not
// the caller's.
func pathID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, ok := tasks.ParseID(s)
	if !ok {
		return 0, tasksync.Errorf(tasksync.CodeNotFound, "conversation %q not found", s)
	}
	return id, nil
}

// queryInt reads an optional positive integer query parameter.
func queryInt(r *http.Request, name string, def, max int64, bad map[string]string) int64 {
	s := strings.TrimSpace(r.URL.Query().Get(name))
	if s == "" {
		return def
	}
	n, ok := tasks.ParseID(s)
	if !ok || n > max {
		bad[name] = fmt.Sprintf("must be a whole number from 1 to %d", max)
		return def
	}
	return n
}

func badQuery(bad map[string]string) error {
	return &tasksync.Error{Code: tasksync.CodeBadRequest, Message: "invalid query parameters", Fields: bad}
}

func (h *Handler) conversations(w http.ResponseWriter, r *http.Request) {
	user, err := auth.Caller(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	bad := map[string]string{}
	limit := queryInt(r, "limit", DefaultConversations, MaxConversations, bad)
	if len(bad) > 0 {
		httpjson.WriteError(w, r, badQuery(bad))
		return
	}
	list, err := h.Service.Store().Conversations(r.Context(), user, int(limit))
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if list == nil {
		list = []Conversation{}
	}
	httpjson.Write(w, http.StatusOK, list)
}

func (h *Handler) conversation(w http.ResponseWriter, r *http.Request) {
	user, err := auth.Caller(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	c, err := h.Service.Store().Conversation(r.Context(), user, id)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

func (h *Handler) messages(w http.ResponseWriter, r *http.Request) {
	user, err := auth.Caller(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	bad := map[string]string{}
	limit := queryInt(r, "limit", DefaultMessages, MaxMessages, bad)
	before := queryInt(r, "before", 0, 1<<62, bad)
	if len(bad) > 0 {
		httpjson.WriteError(w, r, badQuery(bad))
		return
	}
	list, err := h.Service.Store().Messages(r.Context(), user, id, before, int(limit))
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if list == nil {
		list = []Message{}
	}
	httpjson.Write(w, http.StatusOK, list)
}
