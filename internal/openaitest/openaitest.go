// Package openaitest is an in-process HTTP server that speaks the OpenAI
// Chat Completions streaming wire format, scripted by tests, so that the
// real openai-go client (and everything above it) runs against it.
//
// Each POST /v1/chat/completions takes the next queued [Reply] and
// streams it as the real API does: one "data: {chunk}\n\n" event per
// chunk (a role chunk first, content pieces, tool-call fragments whose
// arguments are split across chunks, a finish_reason chunk), then
// "data: [DONE]\n\n". A reply can instead stop mid-stream with an error
// event, drop the connection, hold until released (or the client goes
// away), or answer with an HTTP error. Every request body is recorded.
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Cut is how a reply's stream ends early.
type Cut int

// The ways a stream can end early; each happens after CutAfter text
// pieces have been sent.
const (
	CutNone  Cut = iota // the whole reply, finish_reason and [DONE]
	CutError            // an error event, {"error":{...}}, as OpenAI sends mid-stream
	CutDrop             // the connection closes: no finish_reason, no [DONE]
	CutHold             // stop sending until Release is closed (then finish) or the client goes away
)

// ToolCall is a tool call of a reply. Args are the fragments of its
// arguments, each sent in its own chunk.
type ToolCall struct {
	ID   string
	Name string
	Args []string
}

// Reply scripts one response.
type Reply struct {
	// Status, if not 0 or 200, answers with this HTTP status and an error
	// body (Message) instead of a stream.
	Status int
	// Text pieces, one chunk each, sent before the tool calls.
	Text []string
	// ToolCalls, each announced (id, name) in one chunk, then its argument
	// fragments in further chunks.
	ToolCalls []ToolCall
	// Interleave sends the tool calls' fragments round-robin (call 0
	// header, call 1 header, call 0 piece 1, call 1 piece 1, ...): the
	// client must assemble them by index.
	Interleave bool
	Cut        Cut
	CutAfter   int
	// Message is the error message of CutError and Status replies.
	Message string
	// Release, for CutHold, lets the rest of the reply go when closed.
	Release chan struct{}
	// Held is closed once the reply is holding (CutHold); Gone is closed
	// when the client went away while it held. Made by Push.
	Held, Gone chan struct{}
}

// Request is a recorded request.
type Request struct {
	Auth     string // the Authorization header
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

// Text returns the text content of message i ("" for null content).
func (r Request) Text(i int) string {
	var s string
	_ = json.Unmarshal(r.Messages[i].Content, &s)
	return s
}

// Server is the fake endpoint.
type Server struct {
	// URL is the base URL to give the client (OPENAI_BASE_URL): it ends
	// in /v1.
	URL string

	t       testing.TB // nil for a standalone handler (NewHandler)
	srv     *httptest.Server
	stop    chan struct{}
	mu      sync.Mutex
	replies []*Reply
	reqs    []Request
	// respond, when set, answers requests for which no reply is queued.
	respond func(Request) *Reply
	record  bool
}

// NewHandler returns the endpoint as a plain handler for a process of its
// own (the load generator's test model server): every request is answered
// by respond, and requests are not recorded.
func NewHandler(respond func(Request) *Reply) http.Handler {
	s := &Server{stop: make(chan struct{}), respond: respond}
	return http.HandlerFunc(s.serve)
}

// New starts a server, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{t: t, stop: make(chan struct{}), record: true}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(func() {
		close(s.stop) // unblock held replies
		s.srv.Close()
	})
	return s
}

// Push queues replies, answered in order by the next requests. It returns
// the first one (handy for its channels).
func (s *Server) Push(replies ...*Reply) *Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range replies {
		r.Held, r.Gone = make(chan struct{}), make(chan struct{})
		s.replies = append(s.replies, r)
	}
	return replies[0]
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Pending returns the number of queued replies not yet used.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.replies)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		s.errorf("openaitest: request body is not JSON: %v", err)
		writeError(w, http.StatusBadRequest, "the body is not JSON")
		return
	}
	req.Auth = r.Header.Get("Authorization")
	s.mu.Lock()
	if s.record {
		s.reqs = append(s.reqs, req)
	}
	var reply *Reply
	if len(s.replies) > 0 {
		reply, s.replies = s.replies[0], s.replies[1:]
	}
	s.mu.Unlock()
	if reply == nil && s.respond != nil {
		reply = s.respond(req)
		reply.Held, reply.Gone = make(chan struct{}), make(chan struct{})
	}
	if reply == nil {
		s.errorf("openaitest: request %d has no reply queued", len(s.reqs))
		writeError(w, http.StatusInternalServerError, "no reply queued")
		return
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		writeError(w, reply.Status, reply.Message)
		return
	}
	s.stream(w, r, req.Model, reply)
}

func (s *Server) errorf(format string, args ...any) {
	if s.t != nil {
		s.t.Errorf(format, args...)
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "server_error", "param": nil, "code": nil}})
	_, _ = w.Write(b)
}

// chunk is one streamed chat.completion.chunk.
type chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
}

type chunkChoice struct {
	Index        int            `json:"index"`
	Delta        map[string]any `json:"delta"`
	Logprobs     any            `json:"logprobs"`
	FinishReason *string        `json:"finish_reason"`
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, model string, reply *Reply) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(delta map[string]any, finish string) bool {
		c := chunk{ID: "chatcmpl-test", Object: "chat.completion.chunk", Created: 1767225600, Model: model,
			SystemFingerprint: "fp_test", Choices: []chunkChoice{{Index: 0, Delta: delta}}}
		if finish != "" {
			c.Choices[0].FinishReason = &finish
		}
		b, _ := json.Marshal(c)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// cut runs the reply's early end once n text pieces are out; it
	// reports whether the stream goes on.
	cut := func(n int) bool {
		if reply.Cut == CutNone || n != reply.CutAfter {
			return true
		}
		switch reply.Cut {
		case CutError:
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": reply.Message, "type": "server_error", "param": nil, "code": nil}})
			fmt.Fprintf(w, "data: %s\n\n", b)
			_ = rc.Flush()
			return false
		case CutDrop:
			panic(http.ErrAbortHandler) // closes the connection mid-body
		case CutHold:
			close(reply.Held)
			select {
			case <-reply.Release:
				return true
			case <-r.Context().Done():
				close(reply.Gone)
				return false
			case <-s.stop:
				return false
			}
		}
		return true
	}

	first := map[string]any{"role": "assistant", "content": "", "refusal": nil}
	if len(reply.Text) == 0 && len(reply.ToolCalls) > 0 {
		first["content"] = nil
	}
	if !send(first, "") {
		return
	}
	for i, piece := range reply.Text {
		if !cut(i) || !send(map[string]any{"content": piece}, "") {
			return
		}
	}
	if !cut(len(reply.Text)) {
		return
	}

	header := func(i int, c ToolCall) map[string]any {
		return map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": ""}}}}
	}
	piece := func(i int, arg string) map[string]any {
		return map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": arg}}}}
	}
	if reply.Interleave {
		for i, c := range reply.ToolCalls {
			if !send(header(i, c), "") {
				return
			}
		}
		for k := 0; ; k++ {
			more := false
			for i, c := range reply.ToolCalls {
				if k < len(c.Args) {
					more = true
					if !send(piece(i, c.Args[k]), "") {
						return
					}
				}
			}
			if !more {
				break
			}
		}
	} else {
		for i, c := range reply.ToolCalls {
			if !send(header(i, c), "") {
				return
			}
			for _, a := range c.Args {
				if !send(piece(i, a), "") {
					return
				}
			}
		}
	}
	finish := "stop"
	if len(reply.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	if !send(map[string]any{}, finish) {
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}
