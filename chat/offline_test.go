package chat_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"tasksync/chat"
)

// Every example command of the seed works with the offline assistant,
// through the same tools, service and storage as a real model.
func TestOfflineSeedCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	callMom := e.addTask("ana", "Call mom")
	oldTask := e.addTask("ana", "Old task")
	bills := e.addTask("ana", "Pay bills")
	meeting := e.addTask("ana", "Team meeting at 3pm")
	e.addTask("bob", "Bob's meeting") // never seen by ana's assistant

	var conv int64
	say := func(msg string) frame {
		t.Helper()
		turn := e.start("ana", conv, msg)
		conv = turn.ConversationID
		fs := e.pub.waitEnd(t, "ana", turn.TurnID)
		end := fs[len(fs)-1]
		if end.typ() != chat.TypeDone || end.str("status") != "complete" || text(fs) != end.str("text") {
			t.Fatalf("%q: %v (deltas %q)", msg, end, text(fs))
		}
		return end
	}
	titles := func(status string) []string {
		var out []string
		for _, task := range e.taskList("ana") {
			if status == "" || (status == "pending") != task.Completed {
				out = append(out, task.Title)
			}
		}
		return out
	}
	toolNames := func(end frame) []string {
		var out []string
		for _, c := range end["tool_calls"].([]any) {
			out = append(out, c.(map[string]any)["name"].(string))
		}
		return out
	}

	end := say("add a task to buy groceries")
	list := e.taskList("ana")
	groceries := list[len(list)-1]
	if groceries.Title != "Buy groceries" || !strings.Contains(end.str("text"), `Added "Buy groceries"`) ||
		!slices.Equal(toolNames(end), []string{"add_task"}) {
		t.Fatalf("add: %v; tasks %v", end, titles(""))
	}

	end = say("show me all my tasks")
	for _, title := range []string{"Call mom", "Old task", "Pay bills", "Team meeting at 3pm", "Buy groceries"} {
		if !strings.Contains(end.str("text"), title) {
			t.Fatalf("list lacks %q: %s", title, end.str("text"))
		}
	}
	if strings.Contains(end.str("text"), "Bob") || !strings.HasPrefix(end.str("text"), "You have 5 tasks:") {
		t.Fatalf("list: %s", end.str("text"))
	}

	end = say(fmt.Sprintf("mark task %d as complete", bills))
	if !strings.Contains(end.str("text"), fmt.Sprintf(`Marked task %d "Pay bills" as complete`, bills)) {
		t.Fatalf("complete: %s", end.str("text"))
	}
	if got := titles("completed"); !slices.Equal(got, []string{"Pay bills"}) {
		t.Fatalf("completed tasks: %v", got)
	}

	end = say("what's pending?")
	if !strings.HasPrefix(end.str("text"), "You have 4 pending tasks:") || strings.Contains(end.str("text"), "Pay bills") {
		t.Fatalf("pending: %s", end.str("text"))
	}

	// By title: list first, then delete the one match (two rounds).
	end = say("delete the meeting task")
	if !slices.Equal(toolNames(end), []string{"list_tasks", "delete_task"}) ||
		!strings.Contains(end.str("text"), fmt.Sprintf(`Deleted task %d "Team meeting at 3pm"`, meeting)) {
		t.Fatalf("delete: %v", end)
	}
	if _, err := e.tasks.Get(context.Background(), "ana", meeting); err == nil {
		t.Fatal("the meeting task still exists")
	}

	end = say(fmt.Sprintf("change task %d to 'Call mom tonight'", callMom))
	if task, _ := e.tasks.Get(context.Background(), "ana", callMom); task.Title != "Call mom tonight" {
		t.Fatalf("update: %v; task %+v", end, task)
	}

	end = say(fmt.Sprintf("delete task %d", oldTask))
	if !strings.Contains(end.str("text"), `"Old task"`) {
		t.Fatalf("delete by id: %s", end.str("text"))
	}

	// Anything else: what it can do, and how to configure a model.
	end = say("what is the meaning of life")
	if !strings.Contains(end.str("text"), "OPENAI_API_KEY") || !strings.Contains(end.str("text"), "OPENAI_BASE_URL") ||
		len(end["tool_calls"].([]any)) != 0 {
		t.Fatalf("help: %s", end.str("text"))
	}

	// Errors are explained, not failures.
	end = say("mark task 999999 as complete")
	if !strings.Contains(end.str("text"), "task 999999 not found") {
		t.Fatalf("missing task: %s", end.str("text"))
	}
	end = say("delete the unicorn task")
	if !strings.Contains(end.str("text"), `couldn't find a task matching "unicorn"`) {
		t.Fatalf("no match: %s", end.str("text"))
	}

	// bob's tasks were never touched; the whole conversation is stored.
	if got := e.taskList("bob"); len(got) != 1 || got[0].Completed {
		t.Fatalf("bob's tasks: %+v", got)
	}
	if msgs := e.messages("ana", conv); len(msgs) != 20 {
		t.Fatalf("%d messages stored, want 20", len(msgs))
	}
	_ = groceries
}

// The offline assistant streams its reply word by word, like a model.
func TestOfflineStreamsWords(t *testing.T) {
	var pieces []string
	reply, err := chat.Offline{}.Complete(context.Background(), chat.ModelRequest{
		Messages: []chat.ModelMessage{{Role: chat.RoleUser, Content: "hello there"}},
	}, func(s string) { pieces = append(pieces, s) })
	if err != nil || reply.Text != chat.OfflineHelp || strings.Join(pieces, "") != chat.OfflineHelp || len(pieces) < 20 {
		t.Fatalf("reply %q, %d pieces, err %v", reply.Text, len(pieces), err)
	}
	for _, p := range pieces[:len(pieces)-1] {
		if strings.Count(p, " ") != 1 || !strings.HasSuffix(p, " ") {
			t.Fatalf("piece %q is not one word", p)
		}
	}
}

func TestParseCommand(t *testing.T) {
	desc := "Buy oat milk"
	for _, tc := range []struct {
		in   string
		want chat.Command
	}{
		{"add a task to buy groceries", chat.Command{Action: chat.ActionAdd, Title: "Buy groceries"}},
		{"Please add a task: Call the plumber!", chat.Command{Action: chat.ActionAdd, Title: "Call the plumber"}},
		{"add buy milk to my list", chat.Command{Action: chat.ActionAdd, Title: "Buy milk"}},
		{"remind me to water the plants", chat.Command{Action: chat.ActionAdd, Title: "Water the plants", Remind: true}},
		// The words of an add stay whole (the offline assistant reads the
		// dates out of them); a quoted title is taken as written.
		{"add buy milk tomorrow at 9 #home", chat.Command{Action: chat.ActionAdd, Title: "Buy milk tomorrow at 9 #home"}},
		{"add 'Call mom tonight'", chat.Command{Action: chat.ActionAdd, Title: "Call mom tonight", Literal: true}},
		{"show me all my tasks", chat.Command{Action: chat.ActionList, Status: "all"}},
		{"What's pending?", chat.Command{Action: chat.ActionList, Status: "pending"}},
		{"what have I completed?", chat.Command{Action: chat.ActionList, Status: "completed"}},
		{"list my todos", chat.Command{Action: chat.ActionList, Status: "all"}},
		{"mark task 3 as complete", chat.Command{Action: chat.ActionComplete, TaskID: 3}},
		{"Mark task #3 done.", chat.Command{Action: chat.ActionComplete, TaskID: 3}},
		{"complete task 12", chat.Command{Action: chat.ActionComplete, TaskID: 12}},
		{"task 7 is done", chat.Command{Action: chat.ActionComplete, TaskID: 7}},
		{"mark the groceries task as done", chat.Command{Action: chat.ActionComplete, Match: "groceries"}},
		{"delete the meeting task", chat.Command{Action: chat.ActionDelete, Match: "meeting"}},
		{"delete task 2", chat.Command{Action: chat.ActionDelete, TaskID: 2}},
		{"remove the old task", chat.Command{Action: chat.ActionDelete, Match: "old"}},
		{"change task 1 to 'Call mom tonight'", chat.Command{Action: chat.ActionUpdate, TaskID: 1, Title: "Call mom tonight"}},
		{"Rename task 4 to “Quarterly Review”", chat.Command{Action: chat.ActionUpdate, TaskID: 4, Title: "Quarterly Review"}},
		{"change the title of task 5 to Renew passport", chat.Command{Action: chat.ActionUpdate, TaskID: 5, Title: "Renew passport"}},
		{"set the description of task 6 to Buy oat milk", chat.Command{Action: chat.ActionUpdate, TaskID: 6, Description: &desc}},
		{"change the meeting task to Team sync", chat.Command{Action: chat.ActionUpdate, Match: "meeting", Title: "Team sync"}},
		{"ADD A TASK TO İSTANBUL TRIP", chat.Command{Action: chat.ActionAdd, Title: "İSTANBUL TRIP"}},
		{"hello", chat.Command{Action: chat.ActionHelp}},
		{"", chat.Command{Action: chat.ActionHelp}},
		{"mark task 0 as complete", chat.Command{Action: chat.ActionComplete, Match: "0"}}, // not an id: a title search
	} {
		got := chat.ParseCommand(tc.in)
		if mustJSON(t, got) != mustJSON(t, tc.want) {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// Paced, the offline assistant can be cancelled between words, keeping
// what it said.
func TestOfflinePacedCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{WordDelay: time.Hour}, chat.Config{})
	turn := e.start("ana", 0, "hello")
	e.pub.waitFor(t, "ana", turn.TurnID, "first word", func(fs []frame) bool { return text(fs) != "" })
	if res, err := e.svc.Cancel(context.Background(), "ana", turn.ConversationID); err != nil || res != chat.CancelStopping {
		t.Fatalf("cancel: %v %v", res, err)
	}
	fs := e.pub.waitEnd(t, "ana", turn.TurnID)
	if end := fs[len(fs)-1]; end.str("status") != "cancelled" || end.str("text") != "I'm " {
		t.Fatalf("end: %v", end)
	}
}

// With one turn allowed per user, the next message may follow chat.done
// at once: the slot is free when the last event is sent.
func TestNextMessageRightAfterDone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{MaxTurnsPerUser: 1})
	var conv int64
	for i := 0; i < 20; i++ {
		turn := e.start("ana", conv, "what's pending?")
		conv = turn.ConversationID
		e.pub.waitEnd(t, "ana", turn.TurnID)
	}
}
