package chat_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"tasksync"
	"tasksync/chat"
	"tasksync/internal/openaitest"
)

// Two tool calls in one reply, their arguments split across chunks and
// interleaved, then a second round that answers in text: the tasks exist
// for the right user, the frames come in order, and the assistant message
// is stored with both calls, their arguments and their results.
func TestOpenAIToolCallsAcrossChunksAndRounds(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	fake.Push(
		&openaitest.Reply{
			Text: []string{"Let me ", "add those."},
			ToolCalls: []openaitest.ToolCall{
				{ID: "call_a", Name: "add_task", Args: []string{`{"ti`, `tle": "Buy gro`, `ceries", "user_id": "mallory"}`}},
				{ID: "call_b", Name: "add_task", Args: []string{`{"title":`, ` "Call mom", `, `"priority": "high"}`}},
			},
			Interleave: true,
		},
		&openaitest.Reply{Text: []string{"Done: ", "added both."}},
	)

	turn := e.start("ana", 0, "add groceries and call mom")
	if !turn.Created || turn.ConversationID == 0 || turn.MessageID == 0 || turn.TurnID == "" {
		t.Fatalf("turn: %+v", turn)
	}
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)

	wantShape := []string{chat.TypeStarted, chat.TypeDelta, chat.TypeToolCall, chat.TypeToolResult,
		chat.TypeToolCall, chat.TypeToolResult, chat.TypeDelta, chat.TypeDone}
	if got := shape(fs); !slices.Equal(got, wantShape) {
		t.Fatalf("frames: %v\nwant %v", got, wantShape)
	}
	wantText := "Let me add those.\n\nDone: added both."
	done := fs[len(fs)-1]
	if text(fs) != wantText || done.str("text") != wantText || done.str("status") != "complete" {
		t.Fatalf("text: deltas %q, done %v", text(fs), done)
	}
	started := fs[0]
	if started["conversation_id"] != float64(turn.ConversationID) || started.str("message") != "add groceries and call mom" ||
		started.str("model") != "gpt-test" || started["created"] != true {
		t.Fatalf("started: %v", started)
	}

	// The tasks belong to ana, whatever user_id the model sent.
	list := e.taskList("ana")
	if len(list) != 2 || list[0].Title != "Buy groceries" || list[1].Title != "Call mom" || list[1].Priority != "high" {
		t.Fatalf("ana's tasks: %+v", list)
	}
	if other := e.taskList("mallory"); len(other) != 0 {
		t.Fatalf("mallory got tasks: %+v", other)
	}

	// Tool frames carry the assembled arguments and the seed-shaped results.
	var calls, results []frame
	for _, f := range fs {
		switch f.typ() {
		case chat.TypeToolCall:
			calls = append(calls, f)
		case chat.TypeToolResult:
			results = append(results, f)
		}
	}
	if calls[0].str("call_id") != "call_a" || calls[1].str("call_id") != "call_b" ||
		mustJSON(t, calls[1]["arguments"]) != `{"priority":"high","title":"Call mom"}` {
		t.Fatalf("tool calls: %v", calls)
	}
	wantA := `{"status":"created","task_id":` + itoa(list[0].ID) + `,"title":"Buy groceries"}`
	if mustJSON(t, results[0]["result"]) != wantA || results[0]["is_error"] != false {
		t.Fatalf("result a: %v, want %s", results[0], wantA)
	}

	// Stored: the user message, then the assistant message with both calls.
	msgs := e.messages("ana", turn.ConversationID)
	if len(msgs) != 2 || msgs[0].Role != chat.RoleUser || msgs[1].Role != chat.RoleAssistant {
		t.Fatalf("messages: %+v", msgs)
	}
	a := msgs[1]
	if a.Content != wantText || a.Status != chat.StatusComplete || len(a.ToolCalls) != 2 || a.TurnID != turn.TurnID ||
		int64(done["message_id"].(float64)) != a.ID {
		t.Fatalf("assistant message: %+v", a)
	}
	if a.ToolCalls[0].Name != "add_task" || !strings.Contains(string(a.ToolCalls[0].Arguments), `"Buy groceries"`) ||
		!strings.Contains(string(a.ToolCalls[0].Result), `"status": "created"`) {
		t.Fatalf("stored call: %s %s %s", a.ToolCalls[0].Name, a.ToolCalls[0].Arguments, a.ToolCalls[0].Result)
	}

	// What the model was sent: tools in round 1; in round 2 the assistant
	// turn with both calls (arguments assembled) and one tool message each.
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls", len(reqs))
	}
	if !reqs[0].Stream || reqs[0].Auth != "Bearer test-key" || reqs[0].Model != "gpt-test" || len(reqs[0].Tools) != 5 {
		t.Fatalf("request 1: stream %v auth %q model %q tools %d", reqs[0].Stream, reqs[0].Auth, reqs[0].Model, len(reqs[0].Tools))
	}
	r2 := reqs[1]
	roles := make([]string, len(r2.Messages))
	for i, m := range r2.Messages {
		roles[i] = m.Role
	}
	if !slices.Equal(roles, []string{"system", "user", "assistant", "tool", "tool"}) {
		t.Fatalf("round 2 roles: %v", roles)
	}
	if r2.Text(2) != "Let me add those." || len(r2.Messages[2].ToolCalls) != 2 ||
		// The arguments as stored (re-encoded), as the history shows them later.
		r2.Messages[2].ToolCalls[0].Function.Arguments != `{"title":"Buy groceries","user_id":"mallory"}` ||
		r2.Messages[3].ToolCallID != "call_a" || r2.Messages[4].ToolCallID != "call_b" {
		t.Fatalf("round 2 messages: %+v", r2.Messages)
	}
	if !strings.Contains(r2.Text(3), `"status":"created"`) {
		t.Fatalf("tool message: %s", r2.Messages[3].Content)
	}

	// The conversation continues: the next turn sees the whole history.
	fake.Push(&openaitest.Reply{Text: []string{"You have two tasks."}})
	next := e.start("ana", turn.ConversationID, "how many tasks?")
	e.pub.waitEnd(t, "ana", next.TurnID)
	r3 := fake.Requests()[2]
	// system, user, assistant (calls), tool, tool, assistant (text), user
	if len(r3.Messages) != 7 || r3.Text(1) != "add groceries and call mom" || r3.Text(5) != wantText || r3.Text(6) != "how many tasks?" {
		t.Fatalf("round 3 history: %d messages: %+v", len(r3.Messages), r3.Messages)
	}
}

// A tool error (a task that is not the user's) is a result the model
// reads and answers, not a failed turn.
func TestOpenAIToolErrorIsAResult(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	bobs := e.addTask("bob", "Bob's task")
	fake.Push(
		&openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "c1", Name: "complete_task", Args: []string{`{"task_id": ` + itoa(bobs) + `}`}}}},
		&openaitest.Reply{Text: []string{"I could not find that task."}},
	)
	turn := e.start("ana", 0, "complete bob's task")
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	var result frame
	for _, f := range fs {
		if f.typ() == chat.TypeToolResult {
			result = f
		}
	}
	if result["is_error"] != true || mustJSON(t, result["result"]) != `{"error":"task `+itoa(bobs)+` not found"}` {
		t.Fatalf("result: %v", result)
	}
	if end := fs[len(fs)-1]; end.typ() != chat.TypeDone || end.str("status") != "complete" {
		t.Fatalf("end: %v", end)
	}
	if task, _ := e.tasks.Get(context.Background(), "bob", bobs); task.Completed {
		t.Fatal("ana completed bob's task")
	}
	if r := fake.Requests()[1]; !strings.Contains(r.Text(3), "not found") {
		t.Fatalf("the model did not see the error: %s", r.Messages[3].Content)
	}
}

// An error event in the middle of a stream ends the turn with chat.error,
// the partial text, and an assistant message stored with status error.
func TestOpenAIErrorMidStream(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	fake.Push(&openaitest.Reply{Text: []string{"Working", " on it", " never"}, Cut: openaitest.CutError, CutAfter: 2,
		Message: "The server had an error while processing your request."})
	turn := e.start("ana", 0, "hello")
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	end := fs[len(fs)-1]
	if end.typ() != chat.TypeError || end.str("code") != string(chat.ErrModel) ||
		!strings.Contains(end.str("message"), "The server had an error") || end.str("text") != "Working on it" {
		t.Fatalf("end: %v", end)
	}
	msgs := e.messages("ana", turn.ConversationID)
	a := msgs[len(msgs)-1]
	if a.Status != chat.StatusError || a.Content != "Working on it" || a.Error == nil || a.Error.Code != chat.ErrModel ||
		int64(end["message_id"].(float64)) != a.ID {
		t.Fatalf("stored: %+v %+v", a, a.Error)
	}
	// The conversation is free again.
	fake.Push(&openaitest.Reply{Text: []string{"Hi again."}})
	e.pub.waitEnd(t, "ana", e.start("ana", turn.ConversationID, "again").TurnID)
}

// Failures before or outside a stream: a broken connection, refused key,
// an overloaded endpoint. Each is a clear chat.error, never a hang.
func TestOpenAIFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply *openaitest.Reply
		code  chat.ErrorCode
		text  string
	}{
		{"dropped mid-stream", &openaitest.Reply{Text: []string{"Half", " an answer"}, Cut: openaitest.CutDrop, CutAfter: 1}, chat.ErrModelUnavailable, "stopped answering"},
		{"bad key", &openaitest.Reply{Status: http.StatusUnauthorized, Message: "Incorrect API key provided"}, chat.ErrModel, "OPENAI_API_KEY"},
		{"overloaded", &openaitest.Reply{Status: http.StatusServiceUnavailable, Message: "overloaded"}, chat.ErrModelUnavailable, "HTTP 503"},
		{"unknown model", &openaitest.Reply{Status: http.StatusNotFound, Message: "model not found"}, chat.ErrModel, "OPENAI_MODEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := openaitest.New(t)
			e := newEnv(t, openAI(fake), chat.Config{}) // no retries: MaxRetries 0
			fake.Push(tc.reply)
			turn := e.start("ana", 0, "hello")
			fs := e.pub.waitEnd(t, "ana", turn.TurnID)
			end := fs[len(fs)-1]
			if end.typ() != chat.TypeError || end.str("code") != string(tc.code) || !strings.Contains(end.str("message"), tc.text) {
				t.Fatalf("end: %v", end)
			}
			if msgs := e.messages("ana", turn.ConversationID); msgs[len(msgs)-1].Status != chat.StatusError {
				t.Fatalf("stored: %+v", msgs[len(msgs)-1])
			}
		})
	}
}

// Cancel stops generation (the endpoint sees the client leave) and keeps
// the partial answer, stored with status cancelled.
func TestOpenAICancelKeepsPartialAnswer(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	slow := fake.Push(&openaitest.Reply{Text: []string{"Partial ", "answer", " that never comes"}, Cut: openaitest.CutHold, CutAfter: 2,
		Release: make(chan struct{})})
	turn := e.start("ana", 0, "write a long answer")
	e.pub.waitFor(t, "ana", turn.TurnID, "partial text", func(fs []frame) bool { return text(fs) == "Partial answer" })

	res, err := e.svc.Cancel(context.Background(), "ana", turn.ConversationID)
	if err != nil || res != chat.CancelStopping {
		t.Fatalf("cancel: %v %v", res, err)
	}
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	end := fs[len(fs)-1]
	if end.typ() != chat.TypeDone || end.str("status") != "cancelled" || end.str("text") != "Partial answer" {
		t.Fatalf("end: %v", end)
	}
	<-slow.Gone // the model stream was closed, not left running
	msgs := e.messages("ana", turn.ConversationID)
	if a := msgs[len(msgs)-1]; a.Status != chat.StatusCancelled || a.Content != "Partial answer" {
		t.Fatalf("stored: %+v", a)
	}
	// Nothing runs any more; cancelling again finds nothing.
	if res, err := e.svc.Cancel(context.Background(), "ana", turn.ConversationID); err != nil || res != chat.CancelIdle {
		t.Fatalf("second cancel: %v %v", res, err)
	}
	// Another user cannot even see the conversation.
	if _, err := e.svc.Cancel(context.Background(), "bob", turn.ConversationID); tasksync.ErrorCode(err) != tasksync.CodeNotFound {
		t.Fatalf("bob's cancel: %v", err)
	}
}

// A model that goes silent is cut at CHAT_MODEL_TIMEOUT.
func TestOpenAIModelTimeout(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{ModelTimeout: 300 * time.Millisecond})
	silent := fake.Push(&openaitest.Reply{Text: []string{"Thinking", "..."}, Cut: openaitest.CutHold, CutAfter: 1})
	turn := e.start("ana", 0, "hello")
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	end := fs[len(fs)-1]
	if end.typ() != chat.TypeError || end.str("code") != string(chat.ErrModelTimeout) || end.str("text") != "Thinking" {
		t.Fatalf("end: %v", end)
	}
	<-silent.Gone
}

// A model that keeps calling tools stops at CHAT_MAX_ROUNDS: the last
// round is offered no tools, and tool calls there end the turn.
func TestOpenAIRoundLimit(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{MaxRounds: 2})
	list := openaitest.ToolCall{ID: "c", Name: "list_tasks", Args: []string{`{}`}}
	fake.Push(&openaitest.Reply{ToolCalls: []openaitest.ToolCall{list}}, &openaitest.Reply{ToolCalls: []openaitest.ToolCall{list}})
	turn := e.start("ana", 0, "loop forever")
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	if end := fs[len(fs)-1]; end.str("code") != string(chat.ErrRoundLimit) {
		t.Fatalf("end: %v", end)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 || len(reqs[0].Tools) != 5 || len(reqs[1].Tools) != 0 {
		t.Fatalf("requests: %d, tools %d then %d", len(reqs), len(reqs[0].Tools), len(reqs[1].Tools))
	}
}

// The model sees a bounded window of the history.
func TestHistoryWindow(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{HistoryMessages: 3})
	var conv int64
	for i, msg := range []string{"one", "two", "three", "four"} {
		fake.Push(&openaitest.Reply{Text: []string{"answer " + msg}})
		turn := e.start("ana", conv, msg)
		conv = turn.ConversationID
		e.pub.waitEnd(t, "ana", turn.TurnID)
		if got := len(fake.Requests()[i].Messages); got != 1+min(3, 2*i+1) {
			t.Fatalf("turn %d: %d messages sent", i+1, got)
		}
	}
	last := fake.Requests()[3]
	if last.Text(1) != "three" || last.Text(2) != "answer three" || last.Text(3) != "four" {
		t.Fatalf("window: %+v", last.Messages)
	}
}

// One turn per conversation, a per-user limit, and Stop ends running
// turns with what they have.
func TestLimitsAndStop(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{MaxTurnsPerUser: 1})
	held := fake.Push(&openaitest.Reply{Text: []string{"Hold ", "on"}, Cut: openaitest.CutHold, CutAfter: 1})
	turn := e.start("ana", 0, "first")
	<-held.Held

	ctx := context.Background()
	_, err := e.svc.Start(ctx, chat.StartRequest{UserID: "ana", ConversationID: turn.ConversationID, Message: "again"})
	if tasksync.ErrorCode(err) != tasksync.CodeRateLimited {
		t.Fatalf("over the per-user limit: %v", err)
	}
	// bob is not limited by ana, but cannot use her conversation.
	if _, err := e.svc.Start(ctx, chat.StartRequest{UserID: "bob", ConversationID: turn.ConversationID, Message: "hi"}); tasksync.ErrorCode(err) != tasksync.CodeNotFound {
		t.Fatalf("bob in ana's conversation: %v", err)
	}
	for _, bad := range []chat.StartRequest{
		{UserID: "bob", Message: "   "},
		{UserID: "bob", Message: strings.Repeat("x", chat.MaxMessageRunes+1)},
		{UserID: "bob", Message: "bad\x00text"},
		{UserID: "bob", Message: "hi", ConversationID: -1},
	} {
		if _, err := e.svc.Start(ctx, bad); tasksync.ErrorCode(err) != tasksync.CodeInvalid {
			t.Fatalf("%+v: %v", bad, err)
		}
	}

	e.svc.Stop()
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	end := fs[len(fs)-1]
	if end.typ() != chat.TypeError || end.str("code") != "unavailable" || end.str("text") != "Hold " {
		t.Fatalf("end after Stop: %v", end)
	}
	if e.svc.Running() != 0 {
		t.Fatal("turns still running after Stop")
	}
	msgs := e.messages("ana", turn.ConversationID)
	if a := msgs[len(msgs)-1]; a.Status != chat.StatusError || a.Content != "Hold " {
		t.Fatalf("stored: %+v", a)
	}
	if _, err := e.svc.Start(ctx, chat.StartRequest{UserID: "ana", Message: "after"}); tasksync.ErrorCode(err) != tasksync.CodeUnavailable {
		t.Fatalf("start after Stop: %v", err)
	}
}

// One turn per conversation holds across services (instances) sharing the
// database: the lease is in the conversations row.
func TestOneTurnPerConversationAcrossInstances(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	other := chat.NewService(chat.Config{}, chat.ServiceDeps{Store: e.store, Tools: e.tools, Model: openAI(fake), Publisher: e.pub, Logger: quietLogger})
	t.Cleanup(other.Stop)
	held := fake.Push(&openaitest.Reply{Text: []string{"x"}, Cut: openaitest.CutHold, CutAfter: 1, Release: make(chan struct{})})
	turn := e.start("ana", 0, "first")
	<-held.Held
	_, err := other.Start(context.Background(), chat.StartRequest{UserID: "ana", ConversationID: turn.ConversationID, Message: "second"})
	if tasksync.ErrorCode(err) != tasksync.CodeConflict {
		t.Fatalf("second turn elsewhere: %v", err)
	}
	// The other instance cannot cancel it without a Signaler: it reports
	// nothing to stop rather than pretending.
	if res, err := other.Cancel(context.Background(), "ana", turn.ConversationID); err != nil || res != chat.CancelIdle {
		t.Fatalf("cancel elsewhere without a signaler: %v %v", res, err)
	}
	close(held.Release)
	e.pub.waitEnd(t, "ana", turn.TurnID)
	fake.Push(&openaitest.Reply{Text: []string{"ok"}})
	next, err := other.Start(context.Background(), chat.StartRequest{UserID: "ana", ConversationID: turn.ConversationID, Message: "second"})
	if err != nil {
		t.Fatalf("after the first turn: %v", err)
	}
	e.pub.waitEnd(t, "ana", next.TurnID)
}

// A cancel signal from another instance stops a turn running here; signals
// for other users, other turns or other kinds are ignored.
func TestCancelSignal(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	sig := func(user, kind string, conv int64, turnID string) {
		b, _ := json.Marshal(map[string]any{"kind": kind, "conversation_id": conv, "turn_id": turnID})
		e.svc.HandleSignal(user, b)
	}

	// Foreign signals, then the model finishes: the turn completes (had a
	// signal cancelled it, the agent would see its context done).
	held := fake.Push(&openaitest.Reply{Text: []string{"x", "y"}, Cut: openaitest.CutHold, CutAfter: 1, Release: make(chan struct{})})
	turn := e.start("ana", 0, "first")
	<-held.Held
	sig("bob", "chat.cancel", turn.ConversationID, turn.TurnID)
	sig("ana", "chat.cancel", turn.ConversationID, "t_other")
	sig("ana", "something.else", turn.ConversationID, turn.TurnID)
	sig("ana", "chat.cancel", turn.ConversationID+1, turn.TurnID)
	e.svc.HandleSignal("ana", []byte("not json"))
	close(held.Release)
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	if end := fs[len(fs)-1]; end.str("status") != "complete" || end.str("text") != "xy" {
		t.Fatalf("a foreign signal touched the turn: %v", end)
	}

	held = fake.Push(&openaitest.Reply{Text: []string{"x", "y"}, Cut: openaitest.CutHold, CutAfter: 1})
	turn = e.start("ana", turn.ConversationID, "second")
	e.pub.waitFor(t, "ana", turn.TurnID, "first delta", func(fs []frame) bool { return text(fs) == "x" })
	sig("ana", "chat.cancel", turn.ConversationID, turn.TurnID)
	fs = e.pub.waitEnd(t, "ana", turn.TurnID)
	if end := fs[len(fs)-1]; end.str("status") != "cancelled" || end.str("text") != "x" {
		t.Fatalf("end: %v", end)
	}
}

// A conversation claimed by a turn whose instance died frees up when the
// lease expires; renewals only extend the holder's lease.
func TestConversationLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	ctx := context.Background()
	// A turn claimed by an instance that then died: nothing renews it.
	conv, _, _, err := e.store.BeginTurn(ctx, "ana", 0, "t_dead", "hello", chat.LeaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Start(ctx, chat.StartRequest{UserID: "ana", ConversationID: conv.ID, Message: "anyone?"}); tasksync.ErrorCode(err) != tasksync.CodeConflict {
		t.Fatalf("while the lease holds: %v", err)
	}
	if held, err := e.store.RenewTurn(ctx, "ana", conv.ID, "t_other", chat.LeaseTTL); err != nil || held {
		t.Fatalf("renewed someone else's lease: %v %v", held, err)
	}
	if held, err := e.store.RenewTurn(ctx, "bob", conv.ID, "t_dead", chat.LeaseTTL); err != nil || held {
		t.Fatalf("renewed another user's lease: %v %v", held, err)
	}
	if held, err := e.store.RenewTurn(ctx, "ana", conv.ID, "t_dead", chat.LeaseTTL); err != nil || !held {
		t.Fatalf("holder's renewal: %v %v", held, err)
	}
	if c, _ := e.store.Conversation(ctx, "ana", conv.ID); c.ActiveTurn != "t_dead" {
		t.Fatalf("active turn: %q", c.ActiveTurn)
	}
	// Time passes (the lease is not renewed).
	if _, err := e.db.Pool.Exec(ctx, `UPDATE conversations SET active_until = now() - interval '1 second' WHERE id = $1`, conv.ID); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.store.Conversation(ctx, "ana", conv.ID); c.ActiveTurn != "" {
		t.Fatalf("an expired lease shows as active: %q", c.ActiveTurn)
	}
	turn, err := e.svc.Start(ctx, chat.StartRequest{UserID: "ana", ConversationID: conv.ID, Message: "what's pending?"})
	if err != nil {
		t.Fatalf("after the lease expired: %v", err)
	}
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	if end := fs[len(fs)-1]; end.str("status") != "complete" {
		t.Fatalf("end: %v", end)
	}
}

// A tool call with no name or with arguments that are not a JSON object
// (a model cut off mid-call) is never shown to the model again as a call:
// neither in the turn's next round nor in the history of the next turn.
// It is summarised as text, and only well-formed calls and their results
// are replayed.
func TestOpenAIBrokenToolCallsAreNotReplayed(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnv(t, openAI(fake), chat.Config{})
	fake.Push(
		&openaitest.Reply{ToolCalls: []openaitest.ToolCall{
			{ID: "call_noname", Name: "", Args: []string{`{"title":"x"}`}},
			{ID: "call_cut", Name: "add_task", Args: []string{`{"title": "Half`}},
			{ID: "call_ok", Name: "add_task", Args: []string{`{"title": "Whole"}`}},
		}},
		&openaitest.Reply{Text: []string{"Added one."}},
		&openaitest.Reply{Text: []string{"Sure."}},
	)
	turn := e.start("ana", 0, "add two tasks")
	e.pub.waitEnd(t, "ana", turn.TurnID)
	next := e.start("ana", turn.ConversationID, "thanks")
	e.pub.waitEnd(t, "ana", next.TurnID)

	if list := e.taskList("ana"); len(list) != 1 || list[0].Title != "Whole" {
		t.Fatalf("tasks: %+v", list)
	}
	// The broken calls are stored as they were (what happened is kept).
	if msgs := e.messages("ana", turn.ConversationID); len(msgs) < 2 || len(msgs[1].ToolCalls) != 3 {
		t.Fatalf("stored: %+v", msgs)
	}
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d model calls", len(reqs))
	}
	for n, r := range reqs[1:] {
		var calls, answered []string
		note := false
		for i, m := range r.Messages {
			for _, c := range m.ToolCalls {
				var args map[string]any
				if c.Function.Name == "" || json.Unmarshal([]byte(c.Function.Arguments), &args) != nil || args == nil {
					t.Errorf("request %d message %d: call %q %q %q replayed", n+2, i, c.ID, c.Function.Name, c.Function.Arguments)
				}
				calls = append(calls, c.ID)
			}
			if m.Role == "tool" {
				answered = append(answered, m.ToolCallID)
			}
			if m.Role == "assistant" && strings.Contains(r.Text(i), "could not be read") &&
				strings.Contains(r.Text(i), "without a name") && strings.Contains(r.Text(i), `{"title": "Half`) {
				note = true
			}
		}
		if !slices.Equal(calls, []string{"call_ok"}) || !slices.Equal(answered, []string{"call_ok"}) || !note {
			t.Errorf("request %d: calls %v, results for %v, note %v: %+v", n+2, calls, answered, note, r.Messages)
		}
	}
}
