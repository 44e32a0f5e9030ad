package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"tasksync/internal/reqlog"
	"tasksync/tasks/quickadd"
)

// OfflineModelName is the model name of [Offline] in chat.started.
const OfflineModelName = "offline"

// Offline is the built-in assistant used when no model is configured. It
// understands the seed's example commands ("add a task to buy groceries",
// "show me all my tasks", "what's pending?", "mark task 3 as complete",
// "delete the meeting task", "change task 1 to 'Call mom tonight'") and a
// few variants (see [ParseCommand]); reads the dates, rules, priorities and
// tags of "add ..." with package quickadd in the request's zone and says
// what it set and what it could not read; acts through the same tools as a real
// model (a task named by title is looked up with list_tasks first, so such
// a turn takes two rounds), and streams its reply word by word. For
// anything else it explains what it can do and how to configure a model.
//
// Offline is stateless: everything it needs is in the request, which is
// what lets it share the turn loop with real models.
type Offline struct {
	// WordDelay paces the words like a model's tokens (0: as fast as
	// they can go; followers that lag then get merged deltas).
	WordDelay time.Duration
}

// Name returns OfflineModelName.
func (Offline) Name() string { return OfflineModelName }

// OfflineHelp is the reply to anything the offline assistant does not
// understand.
const OfflineHelp = "I'm the built-in offline assistant: no language model is configured on this server, " +
	"so I only understand simple commands such as:\n" +
	"- \"add a task to buy groceries\"\n" +
	"- \"add buy milk tomorrow at 9 with high priority #home\" or \"add pay rent every month on the 1st\"\n" +
	"- \"show me all my tasks\" or \"what's pending?\"\n" +
	"- \"mark task 3 as complete\"\n" +
	"- \"delete the meeting task\" or \"delete task 2\"\n" +
	"- \"change task 1 to 'Call mom tonight'\"\n" +
	"To talk to a real model, set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (any OpenAI-compatible server, " +
	"e.g. http://localhost:11434/v1 for Ollama) and OPENAI_MODEL, then restart the server."

// Complete answers the last user message of req, or continues after the
// results of its own tool calls.
func (o Offline) Complete(ctx context.Context, req ModelRequest, onText func(string)) (ModelReply, error) {
	last := -1
	for i, m := range req.Messages {
		if m.Role == RoleUser {
			last = i
		}
	}
	var reply ModelReply
	if last < 0 {
		reply = ModelReply{Text: OfflineHelp}
	} else {
		reply = o.step(ParseCommand(req.Messages[last].Content), turnOutcomes(req.Messages[last+1:]), req)
	}
	if len(reply.ToolCalls) > 0 {
		reply.FinishReason = "tool_calls"
		return reply, nil
	}
	reply.FinishReason = "stop"
	// Stream word by word, as a model would, so that clients see the same
	// frames whichever model answers.
	var (
		sent  strings.Builder
		pause *time.Timer
	)
	for i, w := range strings.SplitAfter(reply.Text, " ") {
		if i > 0 && o.WordDelay > 0 {
			if pause == nil {
				pause = time.NewTimer(o.WordDelay)
				defer pause.Stop()
			} else {
				pause.Reset(o.WordDelay)
			}
			select {
			case <-pause.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return ModelReply{Text: sent.String()}, fmt.Errorf("offline model: %w", context.Cause(ctx))
		}
		sent.WriteString(w)
		onText(w)
	}
	return reply, nil
}

// outcome is one tool call of the current turn with its result.
type outcome struct {
	name   string
	args   string
	result json.RawMessage
}

// turnOutcomes pairs this turn's tool calls with their results, in order.
func turnOutcomes(msgs []ModelMessage) []outcome {
	calls := map[string]ModelToolCall{}
	var out []outcome
	for _, m := range msgs {
		switch m.Role {
		case RoleAssistant:
			for _, c := range m.ToolCalls {
				calls[c.ID] = c
			}
		case RoleTool:
			c := calls[m.ToolCallID]
			out = append(out, outcome{name: c.Name, args: c.Arguments, result: json.RawMessage(m.Content)})
		}
	}
	return out
}

func (o Offline) step(cmd Command, done []outcome, req ModelRequest) ModelReply {
	now, zone := req.Now, req.Zone
	if now.IsZero() {
		now = time.Now()
	}
	if zone == nil {
		zone = time.UTC
	}
	call := func(name string, args map[string]any) ModelReply {
		if len(req.Tools) == 0 {
			return ModelReply{Text: "I ran out of steps for that request; please try again."}
		}
		b, _ := json.Marshal(args)
		return ModelReply{ToolCalls: []ModelToolCall{{
			ID: "call_offline_" + strings.ToLower(reqlog.NewID()), Name: name, Arguments: string(b),
		}}}
	}
	tool := map[Action]string{ActionComplete: ToolCompleteTask, ActionDelete: ToolDeleteTask, ActionUpdate: ToolUpdateTask}

	if len(done) == 0 {
		switch cmd.Action {
		case ActionAdd:
			args, problem := addArguments(cmd, quickadd.Parse(cmd.Title, now, zone))
			if problem != "" {
				return ModelReply{Text: problem}
			}
			return call(ToolAddTask, args)
		case ActionList:
			return call(ToolListTasks, map[string]any{"status": cmd.Status})
		case ActionComplete, ActionDelete, ActionUpdate:
			if cmd.TaskID == 0 {
				// Named by title: look it up first.
				return call(ToolListTasks, map[string]any{"status": "all"})
			}
			return call(tool[cmd.Action], cmd.arguments(cmd.TaskID))
		default:
			return ModelReply{Text: OfflineHelp}
		}
	}

	last := done[len(done)-1]
	if msg := errorText(last.result); msg != "" {
		return ModelReply{Text: "I couldn't do that: " + msg + "."}
	}
	if last.name == ToolListTasks && cmd.Action != ActionList && cmd.TaskID == 0 {
		var list []ListedTask
		_ = json.Unmarshal(last.result, &list)
		found := findTasks(list, cmd.Match)
		switch len(found) {
		case 0:
			return ModelReply{Text: fmt.Sprintf("I couldn't find a task matching %q.", cmd.Match)}
		case 1:
			return call(tool[cmd.Action], cmd.arguments(found[0].ID))
		default:
			var b strings.Builder
			fmt.Fprintf(&b, "Several tasks match %q:\n", cmd.Match)
			for _, t := range found {
				fmt.Fprintf(&b, "- #%d %s\n", t.ID, t.Title)
			}
			example := fmt.Sprintf("%s task %d", cmd.Action, found[0].ID)
			if cmd.Action == ActionUpdate {
				example = fmt.Sprintf("change task %d to %q", found[0].ID, cmd.Title)
			}
			fmt.Fprintf(&b, "Which one? Name it by number, e.g. \"%s\".", example)
			return ModelReply{Text: b.String()}
		}
	}
	if last.name == ToolAddTask && !cmd.Literal {
		return ModelReply{Text: describeAdded(last, quickadd.Parse(cmd.Title, now, zone), now.In(zone))}
	}
	return ModelReply{Text: describe(cmd, last)}
}

// addArguments are the add_task arguments of an add command whose words
// were read by quickadd (r): the title without its dates and labels, and
// the fields they set; or, when no title is left, what to tell the user.
func addArguments(cmd Command, r quickadd.Result) (map[string]any, string) {
	if cmd.Literal {
		return map[string]any{"title": cmd.Title}, ""
	}
	name := title(r.Title)
	if name == "" {
		return nil, "What should the task be called? I only found a date or labels in \"" + cmd.Title + "\"; " +
			"try \"add buy milk tomorrow at 9\"."
	}
	args := map[string]any{"title": name}
	stamp := func(t time.Time) string { return t.Format(time.RFC3339) }
	zoned := false
	if r.DueAt != nil {
		args["due_at"] = stamp(*r.DueAt)
		zoned = true
	}
	switch {
	case r.RemindAt != nil:
		args["remind_at"] = stamp(*r.RemindAt)
	case cmd.Remind && r.DueAt != nil:
		args["remind_at"] = stamp(*r.DueAt) // "remind me to ... at 5pm"
	}
	if r.Recurrence != "" {
		args["recurrence"] = r.Recurrence
	}
	if zoned {
		args["tz"] = r.DueAt.Location().String()
	}
	if r.Priority != "" {
		args["priority"] = string(r.Priority)
	}
	if len(r.Tags) > 0 {
		args["tags"] = r.Tags
	}
	return args, ""
}

// describeAdded says what add_task set: "Added "Buy milk" to your tasks
// (task 7): due Thu 3 Dec 09:00 (Europe/Berlin), priority high, tag
// home." The times are those of the call's arguments (what was stored);
// r, the same words read again, says what was all-day, how the rule was
// put, and what could not be read.
func describeAdded(last outcome, r quickadd.Result, now time.Time) string {
	zone := now.Location()
	var res MutationResult
	_ = json.Unmarshal(last.result, &res)
	var args struct {
		DueAt      string   `json:"due_at"`
		RemindAt   string   `json:"remind_at"`
		Recurrence string   `json:"recurrence"`
		Priority   string   `json:"priority"`
		Tags       []string `json:"tags"`
	}
	_ = json.Unmarshal([]byte(last.args), &args)
	when := func(s string, allDay bool) string {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return s
		}
		t = t.In(zone)
		layout := "Mon 2 Jan"
		if t.Year() != now.Year() {
			layout += " 2006"
		}
		if !allDay {
			layout += " 15:04"
		}
		return t.Format(layout)
	}
	var parts []string
	if args.DueAt != "" {
		parts = append(parts, "due "+when(args.DueAt, r.AllDay)+" ("+zone.String()+")")
	}
	if args.Recurrence != "" {
		rule := args.Recurrence
		for _, s := range r.Understood {
			if s.Field == quickadd.FieldRecurrence {
				rule = s.Text
			}
		}
		parts = append(parts, "repeats "+rule)
	}
	if args.RemindAt != "" {
		parts = append(parts, "reminder "+when(args.RemindAt, false))
	}
	if args.Priority != "" {
		parts = append(parts, "priority "+args.Priority)
	}
	switch len(args.Tags) {
	case 0:
	case 1:
		parts = append(parts, "tag "+args.Tags[0])
	default:
		parts = append(parts, "tags "+strings.Join(args.Tags, ", "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Added %q to your tasks (task %d)", res.Title, res.TaskID)
	if len(parts) > 0 {
		b.WriteString(": " + strings.Join(parts, ", "))
	}
	b.WriteString(".")
	if len(r.Unparsed) > 0 {
		var bad []string
		for _, f := range r.Unparsed {
			bad = append(bad, fmt.Sprintf("%q (%s)", f.Text, f.Reason))
		}
		it := "it"
		if len(bad) > 1 {
			it = "them"
		}
		fmt.Fprintf(&b, " I couldn't read %s, so I left %s out of the task.", strings.Join(bad, " or "), it)
	}
	return b.String()
}

// arguments are the tool arguments of cmd for the task id.
func (cmd Command) arguments(id int64) map[string]any {
	args := map[string]any{"task_id": id}
	if cmd.Action == ActionUpdate {
		if cmd.Description != nil {
			args["description"] = *cmd.Description
		} else {
			args["title"] = cmd.Title
		}
	}
	return args
}

// findTasks returns the tasks whose title contains every word of match
// (case-insensitively); an exact title match wins over partial ones.
func findTasks(list []ListedTask, match string) []ListedTask {
	words := strings.Fields(strings.ToLower(match))
	if len(words) == 0 {
		return nil
	}
	var found []ListedTask
	for _, t := range list {
		title := strings.ToLower(t.Title)
		if title == strings.ToLower(match) {
			return []ListedTask{t}
		}
		all := true
		for _, w := range words {
			if !strings.Contains(title, w) {
				all = false
				break
			}
		}
		if all {
			found = append(found, t)
		}
	}
	return found
}

// describe turns the last tool result into the reply.
func describe(cmd Command, last outcome) string {
	if last.name == ToolListTasks {
		var list []ListedTask
		_ = json.Unmarshal(last.result, &list)
		return describeList(cmd.Status, list)
	}
	var r MutationResult
	_ = json.Unmarshal(last.result, &r)
	switch r.Status {
	case "created":
		return fmt.Sprintf("Added %q to your tasks (task %d).", r.Title, r.TaskID)
	case "completed":
		return fmt.Sprintf("Marked task %d %q as complete.", r.TaskID, r.Title)
	case "deleted":
		return fmt.Sprintf("Deleted task %d %q.", r.TaskID, r.Title)
	case "updated":
		if cmd.Description != nil {
			return fmt.Sprintf("Updated the description of task %d %q.", r.TaskID, r.Title)
		}
		return fmt.Sprintf("Updated task %d: it is now %q.", r.TaskID, r.Title)
	}
	return "Done."
}

func describeList(status string, list []ListedTask) string {
	n := len(list)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	var b strings.Builder
	switch {
	case n == 0 && status == "pending":
		return "Nothing is pending: you have no open tasks."
	case n == 0 && status == "completed":
		return "You haven't completed any tasks yet."
	case n == 0:
		return "You have no tasks yet. Try \"add a task to buy groceries\"."
	case status == "pending":
		fmt.Fprintf(&b, "You have %d pending task%s:", n, plural)
	case status == "completed":
		fmt.Fprintf(&b, "You have completed %d task%s:", n, plural)
	default:
		fmt.Fprintf(&b, "You have %d task%s:", n, plural)
	}
	for _, t := range list {
		mark := "[ ]"
		if t.Completed {
			mark = "[x]"
		}
		fmt.Fprintf(&b, "\n- %s #%d %s", mark, t.ID, t.Title)
	}
	return b.String()
}
