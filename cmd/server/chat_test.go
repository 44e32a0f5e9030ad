package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"tasksync/internal/contract"
	"tasksync/internal/openaitest"
	"tasksync/internal/reqlog"
)

// chatConfig points instances at a fake OpenAI endpoint.
func chatConfig(fake *openaitest.Server, extra map[string]string) map[string]string {
	env := map[string]string{"OPENAI_BASE_URL": fake.URL, "OPENAI_API_KEY": "test-key", "OPENAI_MODEL": "gpt-test"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// nextWithin is next with a bounded wait and no failure: ok is false when
// no matching frame came within d. Other frames stay queued.
func (c *wsClient) nextWithin(d time.Duration, match func(frame) bool) (frame, bool) {
	for i, f := range c.pending {
		if match(f) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return f, true
		}
	}
	timeout := time.After(d)
	for {
		select {
		case f := <-c.frames:
			if match(f) {
				return f, true
			}
			c.pending = append(c.pending, f)
		case <-c.closed:
			return nil, false
		case <-timeout:
			return nil, false
		}
	}
}

// following makes sure each socket's instance receives the user's broker
// messages. A socket's instance subscribes to the user's channel
// asynchronously after the socket registers, so a turn started right after
// dialing could publish before the subscription holds. A presence join is
// published to every session of the user through the broker: a probe
// socket's join reaching a socket proves its instance is subscribed.
func following(t *testing.T, via *instance, user string, socks ...*wsClient) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(socks) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets of %s never received presence through the broker", len(socks), user)
		}
		probe := dial(t, via.WS, user)
		id := probe.hello["session_id"]
		var still []*wsClient
		for _, c := range socks {
			if _, ok := c.nextWithin(2*time.Second, func(f frame) bool {
				return f.typ() == "presence" && presenceHas(f, id)
			}); !ok {
				still = append(still, c)
			}
		}
		probe.conn.Close(websocket.StatusNormalClosure, "probe done")
		socks = still
	}
}

var chatTypes = []string{"chat.started", "chat.delta", "chat.tool_call", "chat.tool_result", "chat.done", "chat.error"}

// turnFrames collects the chat frames of turnID up to chat.done or
// chat.error.
func (c *wsClient) turnFrames(turnID string) []frame {
	c.t.Helper()
	var out []frame
	for {
		f := c.next(chatTypes...)
		if f["turn_id"] != turnID {
			continue
		}
		out = append(out, f)
		if f.typ() == "chat.done" || f.typ() == "chat.error" {
			return out
		}
	}
}

// noChatFrames asserts that no chat frame reached c before a ping round
// trip.
func (c *wsClient) noChatFrames() {
	c.t.Helper()
	id := reqlog.NewID()
	c.send(map[string]any{"type": "ping", "id": id})
	for {
		f := c.next()
		if f.typ() == "pong" && f["id"] == id {
			return
		}
		if strings.HasPrefix(f.typ(), "chat.") {
			c.t.Fatalf("chat frame reached another user: %v", f)
		}
	}
}

func chatShape(fs []frame) []string {
	var out []string
	for _, f := range fs {
		if f.typ() == "chat.delta" && len(out) > 0 && out[len(out)-1] == "chat.delta" {
			continue
		}
		out = append(out, f.typ())
	}
	return out
}

func chatText(fs []frame) string {
	var b strings.Builder
	for _, f := range fs {
		if f.typ() == "chat.delta" {
			b.WriteString(f["text"].(string))
		}
	}
	return b.String()
}

// A turn started on one instance streams to every session of the user on
// every instance, the same frames in the same order; another user's
// session gets none. The assistant's tool call is a task change like any
// other: the board sees task.created. The conversation then continues on
// the other instance, which sends the model the whole history.
func TestChatStreamsToEverySessionOfTheUser(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	fake := openaitest.New(t)
	a := env.start(env.config(chatConfig(fake, nil)))
	b := env.start(env.config(chatConfig(fake, nil)))
	anaA, anaB, bobB := dial(t, a.WS, "ana"), dial(t, b.WS, "ana"), dial(t, b.WS, "bob")
	following(t, a, "ana", anaA, anaB)
	following(t, a, "bob", bobB)

	fake.Push(
		&openaitest.Reply{Text: []string{"On ", "it."}, ToolCalls: []openaitest.ToolCall{
			{ID: "call_1", Name: "add_task", Args: []string{`{"title"`, `: "Buy `, `milk", "user_id": "bob"}`}}}},
		&openaitest.Reply{Text: []string{"Added ", "\"Buy milk\"", "."}},
	)
	reply := anaA.request(map[string]any{"type": "chat.send", "message": "add milk to my list"})
	if reply.typ() != "reply" || reply["re"] != "chat.send" || reply["created"] != true || reply["turn_id"] == nil {
		t.Fatalf("reply: %v", reply)
	}
	conv := int64(reply["conversation_id"].(float64))
	turnID := reply["turn_id"].(string)

	onA, onB := anaA.turnFrames(turnID), anaB.turnFrames(turnID)
	if !reflect.DeepEqual(onA, onB) {
		t.Fatalf("sessions saw different streams:\nA %v\nB %v", onA, onB)
	}
	want := []string{"chat.started", "chat.delta", "chat.tool_call", "chat.tool_result", "chat.delta", "chat.done"}
	if got := chatShape(onA); !slices.Equal(got, want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
	started, done := onA[0], onA[len(onA)-1]
	if started["request_id"] != reply["id"] || started["session_id"] != anaA.hello["session_id"] ||
		started["message"] != "add milk to my list" || started["conversation_id"] != float64(conv) {
		t.Fatalf("started: %v", started)
	}
	if chatText(onA) != "On it.\n\nAdded \"Buy milk\"." || done["text"] != chatText(onA) || done["status"] != "complete" {
		t.Fatalf("text %q, done %v", chatText(onA), done)
	}
	if ev := anaB.next("task.created"); ev.task()["title"] != "Buy milk" || ev.task()["user_id"] != "ana" {
		t.Fatalf("task event: %v", ev)
	}
	// bob's socket shares instance B (and its one Redis subscription) with
	// anaB, which has seen the whole turn: anything meant for bob would
	// have arrived before the pong.
	bobB.noChatFrames()

	// Continue on B, over REST: the model gets the stored history.
	fake.Push(&openaitest.Reply{Text: []string{"You added Buy milk."}})
	var res map[string]any
	if code := b.api(t, "ana", "POST", "/api/ana/chat", map[string]any{"conversation_id": conv, "message": "what did I add?"}, &res); code != http.StatusOK {
		t.Fatalf("REST on B: %d %v", code, res)
	}
	if res["conversation_id"] != float64(conv) || res["response"] != "You added Buy milk." || res["tool_calls"] == nil {
		t.Fatalf("REST answer: %v", res)
	}
	r := fake.Requests()[2]
	var roles []string
	for _, m := range r.Messages {
		roles = append(roles, m.Role)
	}
	if !slices.Equal(roles, []string{"system", "user", "assistant", "tool", "assistant", "user"}) ||
		r.Text(1) != "add milk to my list" || r.Messages[2].ToolCalls[0].ID != "call_1" || r.Text(5) != "what did I add?" {
		t.Fatalf("history sent by B: %v %+v", roles, r.Messages)
	}
	var msgs []map[string]any
	b.api(t, "ana", "GET", "/api/ana/conversations/"+itoa64(conv)+"/messages", nil, &msgs)
	if len(msgs) != 4 || msgs[1]["status"] != "complete" || len(msgs[1]["tool_calls"].([]any)) != 1 {
		t.Fatalf("messages: %v", msgs)
	}
	if code := a.api(t, "bob", "GET", "/api/bob/conversations/"+itoa64(conv)+"/messages", nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob reads ana's conversation: %d", code)
	}
	if code := a.api(t, "bob", "GET", "/api/ana/conversations", nil, nil); code != http.StatusForbidden {
		t.Fatalf("bob on ana's path: %d", code)
	}
}

// chat.cancel sent on one instance stops the turn running on another
// (relayed through broker signals); both sessions see chat.done with
// status cancelled and the partial answer.
func TestChatCancelAcrossInstances(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	fake := openaitest.New(t)
	a := env.start(env.config(chatConfig(fake, nil)))
	b := env.start(env.config(chatConfig(fake, nil)))
	anaA, anaB := dial(t, a.WS, "ana"), dial(t, b.WS, "ana")
	following(t, a, "ana", anaA, anaB)

	slow := fake.Push(&openaitest.Reply{Text: []string{"Thinking", " very", " hard"}, Cut: openaitest.CutHold, CutAfter: 1})
	reply := anaA.request(map[string]any{"type": "chat.send", "message": "write an essay"})
	conv, turnID := reply["conversation_id"], reply["turn_id"]
	if f := anaB.next("chat.delta"); f["text"] != "Thinking" || f["turn_id"] != turnID {
		t.Fatalf("delta on B: %v", f)
	}

	cancel := anaB.request(map[string]any{"type": "chat.cancel", "conversation_id": conv})
	if cancel.typ() != "reply" || cancel["status"] != "relayed" {
		t.Fatalf("cancel reply: %v", cancel)
	}
	for _, c := range []*wsClient{anaA, anaB} {
		fs := c.turnFrames(turnID.(string))
		if end := fs[len(fs)-1]; end.typ() != "chat.done" || end["status"] != "cancelled" || end["text"] != "Thinking" {
			t.Fatalf("end: %v", end)
		}
	}
	<-slow.Gone
	var msgs []map[string]any
	b.api(t, "ana", "GET", "/api/ana/conversations/"+itoa64(int64(conv.(float64)))+"/messages", nil, &msgs)
	if len(msgs) != 2 || msgs[1]["status"] != "cancelled" || msgs[1]["content"] != "Thinking" {
		t.Fatalf("stored: %v", msgs)
	}
	// Nothing left to cancel; a conversation of someone else is not found.
	if r := anaA.request(map[string]any{"type": "chat.cancel", "conversation_id": conv}); r["status"] != "idle" {
		t.Fatalf("second cancel: %v", r)
	}
	bob := dial(t, b.WS, "bob")
	if r := bob.request(map[string]any{"type": "chat.cancel", "conversation_id": conv}); r.typ() != "error" || r["code"] != "not_found" {
		t.Fatalf("bob's cancel: %v", r)
	}
}

// The offline assistant answers when no model is configured, over the
// socket, and its tool calls reach the board as task events.
func TestChatOfflineOverSocket(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	ana := dial(t, a.WS, "ana")
	following(t, a, "ana", ana)

	reply := ana.request(map[string]any{"type": "chat.send", "message": "add a task to buy groceries"})
	fs := ana.turnFrames(reply["turn_id"].(string))
	done := fs[len(fs)-1]
	if fs[0]["model"] != "offline" || done.typ() != "chat.done" || !strings.HasPrefix(done["text"].(string), `Added "Buy groceries"`) {
		t.Fatalf("frames: %v", fs)
	}
	if ev := ana.next("task.created"); ev.task()["title"] != "Buy groceries" {
		t.Fatalf("event: %v", ev)
	}
	reply = ana.request(map[string]any{"type": "chat.send", "conversation_id": reply["conversation_id"], "message": "what's pending?"})
	fs = ana.turnFrames(reply["turn_id"].(string))
	if text := fs[len(fs)-1]["text"].(string); !strings.Contains(text, "Buy groceries") {
		t.Fatalf("pending: %q", text)
	}
	// Bad input gets documented errors.
	if r := ana.request(map[string]any{"type": "chat.send", "message": "  "}); r.typ() != "error" || r["code"] != "invalid" {
		t.Fatalf("blank message: %v", r)
	}
	if r := ana.request(map[string]any{"type": "chat.send", "conversation_id": 999999, "message": "hi"}); r["code"] != "not_found" {
		t.Fatalf("unknown conversation: %v", r)
	}
	// The user's zone travels with the message: dates are read in it.
	if r := ana.request(map[string]any{"type": "chat.send", "message": "add x tomorrow", "tz": "Mars/Olympus"}); r["code"] != "invalid" ||
		r["fields"].(map[string]any)["tz"] == nil {
		t.Fatalf("unknown zone: %v", r)
	}
	reply = ana.request(map[string]any{"type": "chat.send", "message": "add buy milk tomorrow at 9 with high priority #home", "tz": "Europe/Berlin"})
	fs = ana.turnFrames(reply["turn_id"].(string))
	ev := ana.next("task.created")
	task := ev.task()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	due, err := time.Parse(time.RFC3339, fmt.Sprint(task["due_at"]))
	if task["title"] != "Buy milk" || task["tz"] != "Europe/Berlin" || task["priority"] != "high" || err != nil ||
		due.In(berlin).Format("15:04") != "09:00" || !due.After(time.Now()) {
		t.Fatalf("task: %v", task)
	}
	if text := fs[len(fs)-1]["text"].(string); !strings.Contains(text, "09:00 (Europe/Berlin), priority high, tag home.") {
		t.Fatalf("reply: %q", text)
	}
}

// Stopping an instance ends its running turns with what they have, stored
// with status error (code unavailable) before the pool closes.
func TestChatShutdownStoresRunningTurn(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	fake := openaitest.New(t)
	a := env.start(env.config(chatConfig(fake, nil)))
	ana := dial(t, a.WS, "ana")
	following(t, a, "ana", ana)
	slow := fake.Push(&openaitest.Reply{Text: []string{"Half", " done"}, Cut: openaitest.CutHold, CutAfter: 1})
	reply := ana.request(map[string]any{"type": "chat.send", "message": "long task"})
	ana.next("chat.delta")

	a.Stop()
	<-slow.Gone
	var status, content, code string
	err := env.DB.Pool.QueryRow(context.Background(), `
		SELECT status, content, error->>'code' FROM messages
		WHERE user_id = 'ana' AND conversation_id = $1 AND role = 'assistant'`, int64(reply["conversation_id"].(float64))).Scan(&status, &content, &code)
	if err != nil || status != "error" || content != "Half" || code != "unavailable" {
		t.Fatalf("stored: %v %q %q %q", err, status, content, code)
	}
	var busy bool
	_ = env.DB.Pool.QueryRow(context.Background(), `SELECT active_turn IS NOT NULL FROM conversations WHERE id = $1`,
		int64(reply["conversation_id"].(float64))).Scan(&busy)
	if busy {
		t.Fatal("the conversation's lease outlived the instance")
	}
}

// SSE goes through the whole middleware chain (request log, CORS, panic
// recovery) and is flushed event by event: the test reads the first delta
// while the model is still holding the rest back.
func TestChatSSEThroughServer(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	fake := openaitest.New(t)
	a := env.start(env.config(chatConfig(fake, nil)))
	slow := fake.Push(&openaitest.Reply{Text: []string{"First", " second"}, Cut: openaitest.CutHold, CutAfter: 1, Release: make(chan struct{})})

	req, _ := http.NewRequest("POST", a.URL+"/api/ana/chat", strings.NewReader(`{"message":"stream please"}`))
	req.Header.Set("Authorization", "Bearer "+tok(t, "ana", time.Hour))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || res.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
	}
	sc := bufio.NewScanner(res.Body)
	var events []string
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			// SSE events carry the socket frames' JSON.
			if err := contract.ValidateServerFrame([]byte(data)); err != nil {
				t.Error(err)
			}
			continue
		}
		name, ok := strings.CutPrefix(line, "event: ")
		if !ok {
			continue
		}
		events = append(events, name)
		if name == "chat.delta" && len(events) == 2 {
			close(slow.Release) // the first delta arrived while the model held the rest
		}
		if name == "chat.done" || name == "chat.error" {
			break
		}
	}
	if len(events) < 3 || events[0] != "chat.started" || events[1] != "chat.delta" || events[len(events)-1] != "chat.done" {
		t.Fatalf("events: %v", events)
	}
}

// bearer adds a token to every request of an MCP client.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func mcpCall(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res.Content[0].(*mcp.TextContent).Text, res.IsError
}

// An MCP client (the official Go SDK) lists the tools and adds a task on
// one instance; the user's socket on another instance sees task.created.
// Another user's token cannot touch the task.
func TestMCPChangesReachTheBoard(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	board := dial(t, b.WS, "ana")

	connect := func(user string) *mcp.ClientSession {
		client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: a.URL + "/mcp",
			HTTPClient: &http.Client{Transport: bearer{token: tok(t, user, time.Hour), base: http.DefaultTransport}}}, nil)
		if err != nil {
			t.Fatalf("MCP connect as %s: %v", user, err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	ana := connect("ana")
	tools, err := ana.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != 5 {
		t.Fatalf("tools: %v %v", tools, err)
	}
	got, isErr := mcpCall(t, ana, "add_task", map[string]any{"title": "Sent by an agent", "priority": "high"})
	var created struct {
		TaskID int64  `json:"task_id"`
		Status string `json:"status"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal([]byte(got), &created); err != nil || isErr || created.Status != "created" {
		t.Fatalf("add_task: %s", got)
	}
	ev := board.next("task.created")
	if ev.task()["title"] != "Sent by an agent" || ev.task()["id"] != float64(created.TaskID) || ev.task()["priority"] != "high" {
		t.Fatalf("board saw %v", ev)
	}

	bob := connect("bob")
	if got, _ := mcpCall(t, bob, "list_tasks", nil); got != "[]" {
		t.Fatalf("bob lists %s", got)
	}
	for _, name := range []string{"complete_task", "update_task", "delete_task"} {
		if got, isErr := mcpCall(t, bob, name, map[string]any{"task_id": created.TaskID, "title": "x"}); !isErr || !strings.Contains(got, "not found") {
			t.Fatalf("bob %s: %s", name, got)
		}
	}
	board.quiet() // no change event: bob changed nothing

	// The same bearer tokens guard every method; a stateless server
	// answers GET and DELETE with 405 once authenticated.
	for _, tc := range []struct {
		method, user string
		want         int
	}{{"POST", "", 401}, {"GET", "", 401}, {"DELETE", "", 401}, {"GET", "ana", 405}, {"DELETE", "ana", 405}} {
		req, _ := http.NewRequest(tc.method, a.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.user != "" {
			req.Header.Set("Authorization", "Bearer "+tok(t, tc.user, time.Hour))
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s /mcp as %q: %d, want %d", tc.method, tc.user, res.StatusCode, tc.want)
		}
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// The assistant's settings: documented defaults, and a bad value names
// its variable.
func TestChatConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/db", "AUTH_JWT_SECRET": testSecret}
	load := func(extra map[string]string) (Config, error) {
		return loadConfig(func(k string) (string, bool) {
			if v, ok := extra[k]; ok {
				return v, true
			}
			v, ok := base[k]
			return v, ok
		})
	}
	cfg, err := load(nil)
	want := ChatConfig{OpenAIModel: "gpt-4o-mini", ModelRetries: 1, MaxRounds: 5, ModelTimeout: time.Minute,
		HistoryMessages: 30, MaxTurnsPerUser: 3, MaxTurns: 64}
	if err != nil || cfg.Chat != want {
		t.Fatalf("defaults: %+v %v", cfg.Chat, err)
	}
	for key, value := range map[string]string{
		"OPENAI_BASE_URL": "localhost:11434", "CHAT_MAX_ROUNDS": "0", "CHAT_MODEL_TIMEOUT": "soon",
		"CHAT_HISTORY_MESSAGES": "-1", "CHAT_MAX_TURNS_PER_USER": "many", "CHAT_MAX_TURNS": "0", "CHAT_MODEL_RETRIES": "9",
	} {
		if _, err := load(map[string]string{key: value}); err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("%s=%q: %v", key, value, err)
		}
	}
}
