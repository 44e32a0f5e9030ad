package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"tasksync/tasks"
)

// Agent runs the rounds of one turn: call the model with the history, run
// the tool calls it asks for, give it the results, and again, until it
// answers in text or the round limit is reached. It knows nothing of
// storage or streaming: history comes in, events go out through emit,
// and the outcome is returned for the caller to store.
type Agent struct {
	Model Model
	Tools *Tools
	// MaxRounds is the number of model calls a turn may make
	// (DefaultMaxRounds). The last allowed call is offered no tools, so
	// that the model answers in text.
	MaxRounds int
	// ModelTimeout bounds each model call (DefaultModelTimeout).
	ModelTimeout time.Duration
	// MaxToolCalls bounds the tool calls run per round
	// (DefaultMaxToolCalls); further calls are answered with an error
	// result, not run.
	MaxToolCalls int
	Logger       *slog.Logger
	// Now returns the time for the system prompt (default time.Now).
	Now func() time.Time
}

// TurnInput is what a turn starts from.
type TurnInput struct {
	UserID         string
	ConversationID int64
	TurnID         string
	// Zone is the user's time zone; nil means UTC.
	Zone *time.Location
	// History is the conversation's window, oldest first, ending with the
	// user's new message.
	History []Message
}

// TurnOutcome is how a turn ended: the assistant message to store.
type TurnOutcome struct {
	Text      string
	ToolCalls []ToolCall
	Status    Status
	Error     *MessageError // for StatusError
}

func (a *Agent) defaults() {
	if a.MaxRounds <= 0 {
		a.MaxRounds = DefaultMaxRounds
	}
	if a.ModelTimeout <= 0 {
		a.ModelTimeout = DefaultModelTimeout
	}
	if a.MaxToolCalls <= 0 {
		a.MaxToolCalls = DefaultMaxToolCalls
	}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	if a.Now == nil {
		a.Now = time.Now
	}
}

// SystemPrompt is the system message of every model call; %s is the
// current time in the user's zone ([nowText]).
const SystemPrompt = `You are the assistant of a todo app. You manage the user's tasks with the tools add_task, list_tasks, complete_task, update_task and delete_task.
Rules:
- Use the tools to read or change tasks; never claim a change you did not make with a tool.
- Never guess a task id. When the user names a task by its title, call list_tasks first and use the id you find; if several tasks match, ask which one.
- Dates and times: resolve them from the time below and pass due_at (and remind_at) as RFC 3339 with the user's UTC offset; for a repeating task pass recurrence (an RRULE such as FREQ=WEEKLY;BYDAY=MO) with due_at its first occurrence; pass tz, the user's time zone. Never put a date, priority or tag into the title.
- After acting, confirm briefly what you did, naming the task and its id.
- If a tool returns {"error": ...}, explain the problem in plain words and suggest what to do.
- Be concise and friendly.
Now is %s.`

// nowText is the time for the system prompt: "Wednesday, 2 December 2026,
// 10:30 in Europe/Berlin (UTC+01:00)", so that a model resolves "tomorrow
// at 9" in the user's zone.
func nowText(now time.Time) string {
	return now.Format("Monday, 2 January 2006, 15:04") + " in " + now.Location().String() + " (UTC" + now.Format("-07:00") + ")"
}

// Run runs the turn until it ends: the model answered (complete), ctx was
// cancelled with errCancelled (cancelled, keeping the partial answer), or
// something failed (error, with a code and message for the user). emit
// receives chat.delta, chat.tool_call and chat.tool_result events from the
// calling goroutine, in order; it must not block for long.
func (a *Agent) Run(ctx context.Context, in TurnInput, emit func(Event)) TurnOutcome {
	a.defaults()
	var (
		out       TurnOutcome
		text      strings.Builder // the whole answer so far
		roundText strings.Builder // this round's part of it
	)
	onText := func(s string) {
		// What is streamed is what is stored: text without NUL.
		if s = strings.ReplaceAll(s, "\x00", ""); s == "" {
			return
		}
		if roundText.Len() == 0 && text.Len() > 0 && !strings.HasSuffix(text.String(), "\n\n") {
			// A new round's text starts a new paragraph; the separator is
			// streamed too, so that the deltas add up to the text.
			sep := "\n\n"
			if strings.HasSuffix(text.String(), "\n") {
				sep = "\n"
			}
			text.WriteString(sep)
			emit(&Delta{Type: TypeDelta, ConversationID: in.ConversationID, TurnID: in.TurnID, Text: sep})
		}
		roundText.WriteString(s)
		text.WriteString(s)
		emit(&Delta{Type: TypeDelta, ConversationID: in.ConversationID, TurnID: in.TurnID, Text: s})
	}
	end := func(status Status, e *MessageError) TurnOutcome {
		out.Text, out.Status, out.Error = text.String(), status, e
		return out
	}

	// Tools default a new task's zone to the user's.
	ctx = WithZone(ctx, in.Zone)
	zone := in.Zone
	if zone == nil {
		zone = time.UTC
	}
	now := a.Now().In(zone)
	system := fmt.Sprintf(SystemPrompt, nowText(now))
	msgs := historyMessages(in.History)
	specs := a.Tools.Specs()
	for round := 1; ; round++ {
		tools := specs
		if round >= a.MaxRounds {
			tools = nil
		}
		roundText.Reset()
		mctx, cancel := context.WithTimeoutCause(ctx, a.ModelTimeout, errModelTimeout)
		reply, err := a.Model.Complete(mctx, ModelRequest{System: system, Messages: msgs, Tools: tools, Now: now, Zone: zone}, onText)
		modelTimedOut := errors.Is(context.Cause(mctx), errModelTimeout)
		cancel()
		if ctx.Err() != nil {
			return end(a.interrupted(ctx))
		}
		if err != nil {
			return end(StatusError, a.modelFailure(ctx, in, err, modelTimedOut))
		}
		if len(reply.ToolCalls) == 0 {
			return end(StatusComplete, nil)
		}
		if tools == nil {
			return end(StatusError, &MessageError{Code: ErrRoundLimit, Message: fmt.Sprintf(
				"the assistant needed more than %d steps for this request; ask again in smaller parts", a.MaxRounds)})
		}

		first := len(out.ToolCalls)
		for i, c := range reply.ToolCalls {
			name := clip(storable(c.Name), 64)
			args := argumentsJSON(c.Arguments)
			emit(&ToolCallEvent{Type: TypeToolCall, ConversationID: in.ConversationID, TurnID: in.TurnID,
				CallID: c.ID, Name: name, Arguments: args})
			var (
				result json.RawMessage
				isErr  = true
			)
			switch {
			case ctx.Err() != nil:
				result = errorResult("not run: the turn was stopped")
			case i >= a.MaxToolCalls:
				result = errorResult(fmt.Sprintf("not run: at most %d tool calls per step", a.MaxToolCalls))
			default:
				// Detached from cancellation: a change that started is
				// finished and reported, never left half-known.
				callCtx := WithActor(context.WithoutCancel(ctx), tasks.ActorAssistant, strconv.FormatInt(in.ConversationID, 10))
				result, isErr = a.Tools.Call(callCtx, in.UserID, c.Name, json.RawMessage(c.Arguments))
			}
			emit(&ToolResultEvent{Type: TypeToolResult, ConversationID: in.ConversationID, TurnID: in.TurnID,
				CallID: c.ID, Name: name, Result: result, IsError: isErr})
			out.ToolCalls = append(out.ToolCalls, ToolCall{ID: c.ID, Name: name, Arguments: args, Result: result, IsError: isErr})
		}
		// The next round sees this one's calls as stored: a malformed
		// call goes back as a note, never as a call the endpoint may
		// refuse to read.
		calls, note := replayToolCalls(out.ToolCalls[first:])
		if len(calls) > 0 {
			calls[0].Content = roundText.String()
		} else {
			note = joinText(roundText.String(), note)
		}
		msgs = append(msgs, calls...)
		if note != "" {
			msgs = append(msgs, ModelMessage{Role: RoleAssistant, Content: note})
		}
		if ctx.Err() != nil {
			return end(a.interrupted(ctx))
		}
	}
}

// interrupted says how a turn whose context ended stops.
func (a *Agent) interrupted(ctx context.Context) (Status, *MessageError) {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errShutdown):
		return StatusError, &MessageError{Code: ErrShuttingDown,
			Message: "the server stopped while answering; send your message again"}
	case errors.Is(cause, errTurnDeadline):
		return StatusError, &MessageError{Code: ErrModelTimeout,
			Message: "the answer took longer than this server allows for one message; try again"}
	default:
		// Cancelled by the user: chat.cancel, or a REST client that went
		// away.
		return StatusCancelled, nil
	}
}

func (a *Agent) modelFailure(ctx context.Context, in TurnInput, err error, timedOut bool) *MessageError {
	if timedOut {
		return &MessageError{Code: ErrModelTimeout,
			Message: fmt.Sprintf("the model did not finish within %s; try again", a.ModelTimeout)}
	}
	var me *ModelError
	if errors.As(err, &me) {
		a.Logger.WarnContext(ctx, "chat model call failed", "conversation", in.ConversationID, "turn", in.TurnID,
			"model", a.Model.Name(), "code", me.Code, "err", err)
		return &MessageError{Code: me.Code, Message: me.Message}
	}
	a.Logger.ErrorContext(ctx, "chat model call failed", "conversation", in.ConversationID, "turn", in.TurnID,
		"model", a.Model.Name(), "err", err)
	return &MessageError{Code: ErrInternal, Message: "internal error"}
}

func errorResult(msg string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return b
}

// historyMessages turns stored messages into model messages. An assistant
// message with tool calls becomes the calls, one tool message per result,
// and then its text; a message with neither text nor calls (a turn that
// failed at once) is left out. Calls that are not well-formed are told as
// text instead (replayToolCalls).
func historyMessages(history []Message) []ModelMessage {
	out := make([]ModelMessage, 0, len(history)+4)
	for _, m := range history {
		switch m.Role {
		case RoleUser:
			out = append(out, ModelMessage{Role: RoleUser, Content: m.Content})
		case RoleAssistant:
			calls, note := replayToolCalls(m.ToolCalls)
			out = append(out, calls...)
			if text := joinText(note, m.Content); text != "" {
				out = append(out, ModelMessage{Role: RoleAssistant, Content: text})
			}
		}
	}
	return out
}

// replayToolCalls returns what a model is shown of stored tool calls: an
// assistant message with the well-formed ones followed by one tool message
// per result, and, for the others (no id or name, a name no endpoint
// accepts, arguments that are not a JSON object, as a model cut off
// mid-call leaves them), a plain-text note saying what was tried and what
// came of it. Replaying such a call verbatim makes strict endpoints refuse
// the whole request, and shows the model its own broken output as an
// example to follow.
func replayToolCalls(stored []ToolCall) (msgs []ModelMessage, note string) {
	var (
		calls   []ModelToolCall
		results []ModelMessage
		broken  []string
	)
	for _, c := range stored {
		result := string(c.Result)
		if result == "" || result == "null" {
			result = `{"error":"no result recorded"}`
		}
		if !wellFormedCall(c) {
			name := "a tool call without a name"
			if c.Name != "" {
				name = fmt.Sprintf("a call of %q", clip(c.Name, 64))
			}
			broken = append(broken, fmt.Sprintf("%s with unreadable arguments %s returned %s",
				name, clip(argumentsText(c.Arguments), 200), clip(result, 200)))
			continue
		}
		calls = append(calls, ModelToolCall{ID: c.ID, Name: c.Name, Arguments: argumentsText(c.Arguments)})
		results = append(results, ModelMessage{Role: RoleTool, Content: result, ToolCallID: c.ID})
	}
	if len(calls) > 0 {
		msgs = append(append(msgs, ModelMessage{Role: RoleAssistant, ToolCalls: calls}), results...)
	}
	if len(broken) > 0 {
		note = "(Tool calls that could not be read: " + strings.Join(broken, "; ") + ".)"
	}
	return msgs, note
}

// wellFormedCall reports whether a stored call can be shown to a model as
// a call: an id, a name of 1 to 64 letters, digits, _ or - (the OpenAI
// rule for function names), and arguments that are a JSON object.
func wellFormedCall(c ToolCall) bool {
	if c.ID == "" || c.Name == "" || len(c.Name) > 64 {
		return false
	}
	for _, r := range c.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	args := bytes.TrimSpace(c.Arguments)
	return len(args) > 0 && args[0] == '{' && json.Valid(args)
}

// joinText joins two pieces of an assistant's text as paragraphs.
func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}
