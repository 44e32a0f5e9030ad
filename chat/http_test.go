package chat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"tasksync/auth"
	"tasksync/chat"
	"tasksync/internal/contract"
	"tasksync/internal/httpjson"
	"tasksync/internal/openaitest"
)

var testSecret = []byte("chat-test-secret-0123456789-abcdefgh")

// apiServer serves the chat routes behind the same middleware chain as
// cmd/server (minus rate limiting), plus /mcp.
func apiServer(t *testing.T, e *testEnv, keepAlive time.Duration) *httptest.Server {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mw := func(h http.Handler) http.Handler { return auth.Middleware(v)(auth.RequirePathUser(h)) }
	(&chat.Handler{Service: e.svc, KeepAlive: keepAlive}).Register(mux, mw)
	mux.Handle("/mcp", auth.Middleware(v)(chat.NewMCPHandler(chat.NewMCPServer(e.tools, quietLogger), quietLogger)))
	srv := httptest.NewServer(httpjson.Routes(mux))
	t.Cleanup(srv.Close)
	contract.ValidateHTTP().Serve(srv.URL) // its answers must match docs/openapi.yaml
	return srv
}

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a request as user; body may be a string (sent as is) or a value
// (sent as JSON).
func do(t *testing.T, ctx context.Context, srv *httptest.Server, user, method, path string, body any, accept string) *http.Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+token(t, user))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func decode[T any](t *testing.T, res *http.Response) T {
	t.Helper()
	defer res.Body.Close()
	var v T
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// The seed contract: POST /api/{user_id}/chat answers {conversation_id,
// response, tool_calls}; history is readable, and only by its owner.
func TestRESTChat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	srv := apiServer(t, e, 0)
	ctx := context.Background()

	res := do(t, ctx, srv, "ana", "POST", "/api/ana/chat", map[string]any{"message": "add a task to buy groceries"}, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	var raw map[string]json.RawMessage
	body := decode[json.RawMessage](t, res)
	_ = json.Unmarshal(body, &raw)
	for _, k := range []string{"conversation_id", "response", "tool_calls"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("response lacks %q: %s", k, body)
		}
	}
	var r chat.Response
	_ = json.Unmarshal(body, &r)
	if r.ConversationID == 0 || !strings.HasPrefix(r.Response, `Added "Buy groceries"`) || r.Status != "complete" ||
		len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "add_task" || !strings.Contains(string(r.ToolCalls[0].Result), `"status":"created"`) {
		t.Fatalf("response: %s", body)
	}

	res = do(t, ctx, srv, "ana", "POST", "/api/ana/chat", map[string]any{"conversation_id": r.ConversationID, "message": "show me all my tasks"}, "")
	r2 := decode[chat.Response](t, res)
	if r2.ConversationID != r.ConversationID || !strings.Contains(r2.Response, "Buy groceries") {
		t.Fatalf("second: %+v", r2)
	}

	convs := decode[[]map[string]any](t, do(t, ctx, srv, "ana", "GET", "/api/ana/conversations", nil, ""))
	if len(convs) != 1 || convs[0]["id"] != float64(r.ConversationID) || convs[0]["title"] != "add a task to buy groceries" {
		t.Fatalf("conversations: %v", convs)
	}
	msgs := decode[[]map[string]any](t, do(t, ctx, srv, "ana", "GET", "/api/ana/conversations/"+itoa(r.ConversationID)+"/messages", nil, ""))
	var roles []string
	for _, m := range msgs {
		roles = append(roles, m["role"].(string))
	}
	if !slices.Equal(roles, []string{"user", "assistant", "user", "assistant"}) || msgs[1]["status"] != "complete" ||
		len(msgs[1]["tool_calls"].([]any)) != 1 || len(msgs[0]["tool_calls"].([]any)) != 0 {
		t.Fatalf("messages: %v", msgs)
	}
	page := decode[[]map[string]any](t, do(t, ctx, srv, "ana", "GET", "/api/ana/conversations/"+itoa(r.ConversationID)+"/messages?limit=2&before="+itoa(int64(msgs[2]["id"].(float64))), nil, ""))
	if len(page) != 2 || page[0]["id"] != msgs[0]["id"] {
		t.Fatalf("page: %v", page)
	}

	// bob: his own path, ana's conversation id: not found, everywhere.
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/bob/conversations/" + itoa(r.ConversationID) + "/messages"},
		{"GET", "/api/bob/conversations/" + itoa(r.ConversationID)},
	} {
		if res := do(t, ctx, srv, "bob", req.method, req.path, nil, ""); res.StatusCode != http.StatusNotFound {
			t.Fatalf("bob %s %s: %d", req.method, req.path, res.StatusCode)
		}
	}
	res = do(t, ctx, srv, "bob", "POST", "/api/bob/chat", map[string]any{"conversation_id": r.ConversationID, "message": "hi"}, "")
	if eb := decode[errorBody](t, res); res.StatusCode != http.StatusNotFound || eb.Error.Code != "not_found" {
		t.Fatalf("bob posting into ana's conversation: %d %+v", res.StatusCode, eb)
	}
	if convs := decode[[]any](t, do(t, ctx, srv, "bob", "GET", "/api/bob/conversations", nil, "")); len(convs) != 0 {
		t.Fatalf("bob sees %v", convs)
	}
	// ana's path with bob's token: forbidden.
	if res := do(t, ctx, srv, "bob", "GET", "/api/ana/conversations", nil, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("bob on ana's path: %d", res.StatusCode)
	}
	if res := do(t, ctx, srv, "", "POST", "/api/ana/chat", map[string]any{"message": "hi"}, ""); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", res.StatusCode)
	}
}

func TestRESTChatValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	srv := apiServer(t, e, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		body   any
		status int
		code   string
		field  string
	}{
		{map[string]any{}, 422, "invalid", "message"},
		{map[string]any{"message": ""}, 422, "invalid", "message"},
		{map[string]any{"message": "   "}, 422, "invalid", "message"},
		{map[string]any{"message": strings.Repeat("é", chat.MaxMessageRunes+1)}, 422, "invalid", "message"},
		{map[string]any{"message": 42}, 422, "invalid", "message"},
		{map[string]any{"message": "hi", "conversation_id": "7"}, 422, "invalid", "conversation_id"},
		{map[string]any{"message": "hi", "tz": "Mars/Olympus"}, 422, "invalid", "tz"},
		{map[string]any{"message": "hi", "tz": "Local"}, 422, "invalid", "tz"},
		{map[string]any{"message": "hi", "tz": 1}, 422, "invalid", "tz"},
		{map[string]any{"message": "hi", "conversation_id": -1}, 422, "invalid", "conversation_id"},
		{map[string]any{"message": "hi", "conversation_id": 1.5}, 422, "invalid", "conversation_id"},
		{`{"message": "hi", "conversation_id": -0}`, 422, "invalid", "conversation_id"},
		{`{"message": "hi", "conversation_id": 1e0}`, 422, "invalid", "conversation_id"},
		// Refused, not stored with U+FFFD in their place.
		{"{\"message\": \"bad\xff\xfe\"}", 422, "invalid", "message"},
		{`{"message": "lone \ud800 surrogate"}`, 422, "invalid", "message"},
		{`{"message": "hi"`, 400, "bad_request", ""},
		{`[1,2]`, 400, "bad_request", ""},
		{`null`, 400, "bad_request", ""},
	} {
		res := do(t, ctx, srv, "ana", "POST", "/api/ana/chat", tc.body, "")
		eb := decode[errorBody](t, res)
		if res.StatusCode != tc.status || eb.Error.Code != tc.code || (tc.field != "" && eb.Error.Fields[tc.field] == "") {
			t.Errorf("%v: %d %+v", tc.body, res.StatusCode, eb)
		}
	}
	if n := len(e.taskList("ana")); n != 0 {
		t.Errorf("%d tasks", n)
	}
	// A surrogate pair is text.
	if res := do(t, ctx, srv, "ana", "POST", "/api/ana/chat", `{"message": "add a task to pet the \ud83d\udc08"}`, ""); res.StatusCode != http.StatusOK {
		t.Errorf("surrogate pair: %d", res.StatusCode)
	} else {
		res.Body.Close()
	}
	// Exactly the limit is fine.
	res := do(t, ctx, srv, "ana", "POST", "/api/ana/chat", map[string]any{"message": strings.Repeat("é", chat.MaxMessageRunes)}, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("4000 characters: %d", res.StatusCode)
	}
	res.Body.Close()
	for _, q := range []string{"limit=0", "limit=x", "limit=1000"} {
		if res := do(t, ctx, srv, "ana", "GET", "/api/ana/conversations?"+q, nil, ""); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", q, res.StatusCode)
		}
	}
	for _, q := range []string{"limit=%2B5", "limit=05"} {
		if res := do(t, ctx, srv, "ana", "GET", "/api/ana/conversations?"+q, nil, ""); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", q, res.StatusCode)
		}
	}
	// Conversation 1 exists: other spellings of 1 do not name it.
	for _, id := range []string{"abc", "+1", "01", "1e0", "%201"} {
		for _, p := range []string{"/api/ana/conversations/" + id, "/api/ana/conversations/" + id + "/messages"} {
			if res := do(t, ctx, srv, "ana", "GET", p, nil, ""); res.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d", p, res.StatusCode)
			}
		}
	}
	if res := do(t, ctx, srv, "ana", "GET", "/api/ana/conversations/1", nil, ""); res.StatusCode != http.StatusOK {
		t.Errorf("conversation 1: %d", res.StatusCode)
	}
}

// sseEvent is one server-sent event; a comment line is an event named ":".
type sseEvent struct {
	name string
	data map[string]any
}

func readSSE(t *testing.T, r *bufio.Reader) (sseEvent, bool) {
	t.Helper()
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, false
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
			return sseEvent{name: ":"}, true
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				t.Fatalf("data is not JSON: %q", line)
			}
		}
	}
}

// With Accept: text/event-stream the same events stream as SSE, flushed
// one by one, with keep-alive comments while the model is quiet, ending
// with chat.done.
func TestRESTChatSSE(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	srv := apiServer(t, e, 20*time.Millisecond)
	slow := fake.Push(&openaitest.Reply{Text: []string{"Hello", " there"}, Cut: openaitest.CutHold, CutAfter: 1, Release: make(chan struct{})})

	res := do(t, context.Background(), srv, "ana", "POST", "/api/ana/chat", map[string]any{"message": "hi"}, "text/event-stream")
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(res.Body)
	var names []string
	var got strings.Builder
	keepAlives := 0
	for {
		ev, ok := readSSE(t, rd)
		if !ok {
			break
		}
		if ev.name == ":" {
			keepAlives++
			if keepAlives == 2 {
				close(slow.Release) // the stream went on while the model was quiet
			}
			continue
		}
		if ev.data["type"] != ev.name {
			t.Fatalf("event %q carries type %v", ev.name, ev.data["type"])
		}
		if len(names) == 0 || names[len(names)-1] != ev.name || ev.name != chat.TypeDelta {
			names = append(names, ev.name)
		}
		if ev.name == chat.TypeDelta {
			got.WriteString(ev.data["text"].(string))
		}
		if ev.name == chat.TypeDone && ev.data["text"] != "Hello there" {
			t.Fatalf("done: %v", ev.data)
		}
	}
	if !slices.Equal(names, []string{chat.TypeStarted, chat.TypeDelta, chat.TypeDone}) || got.String() != "Hello there" || keepAlives < 2 {
		t.Fatalf("events %v, text %q, keep-alives %d", names, got.String(), keepAlives)
	}
}

// A REST client that goes away cancels its turn; the partial answer is
// stored as cancelled.
func TestRESTClientGoneCancels(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	srv := apiServer(t, e, 0)
	slow := fake.Push(&openaitest.Reply{Text: []string{"Part", "ial"}, Cut: openaitest.CutHold, CutAfter: 1})

	ctx, cancel := context.WithCancel(context.Background())
	res := do(t, ctx, srv, "ana", "POST", "/api/ana/chat", map[string]any{"message": "hi"}, "text/event-stream")
	rd := bufio.NewReader(res.Body)
	var conv int64
	var turnID string
	for {
		ev, ok := readSSE(t, rd)
		if !ok {
			t.Fatal("stream ended early")
		}
		if ev.name == chat.TypeStarted {
			conv, turnID = int64(ev.data["conversation_id"].(float64)), ev.data["turn_id"].(string)
		}
		if ev.name == chat.TypeDelta {
			break
		}
	}
	cancel()
	res.Body.Close()
	<-slow.Gone
	// REST turns publish to the user's sockets too: the last frame says
	// how it ended, after the message was stored.
	fs := e.pub.waitEnd(t, "ana", turnID)
	if end := fs[len(fs)-1]; end.str("status") != "cancelled" || end.str("text") != "Part" {
		t.Fatalf("end: %v", end)
	}
	if msgs := e.messages("ana", conv); len(msgs) != 2 || msgs[1].Status != chat.StatusCancelled || msgs[1].Content != "Part" {
		t.Fatalf("stored: %+v", msgs)
	}
}
