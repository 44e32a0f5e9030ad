package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"tasksync/chat"
	"tasksync/internal/openaitest"
	"tasksync/internal/testdb"
	"tasksync/tasks"
)

// The reference of these tests: Wednesday 2 December 2026, 10:30 in Berlin.
var (
	berlin = func() *time.Location {
		loc, err := time.LoadLocation("Europe/Berlin")
		if err != nil {
			panic(err)
		}
		return loc
	}()
	refNow = time.Date(2026, time.December, 2, 10, 30, 0, 0, berlin)
)

// newEnvAt is newEnv with the service's clock fixed at now.
func newEnvAt(t *testing.T, model chat.Model, now time.Time) *testEnv {
	t.Helper()
	db := testdb.New(t)
	e := &testEnv{t: t, db: db, tasks: tasks.NewService(db.Pool), store: chat.NewStore(db.Pool), pub: newRecorder()}
	e.tools = chat.NewTools(e.tasks, quietLogger)
	e.svc = chat.NewService(chat.Config{}, chat.ServiceDeps{Store: e.store, Tools: e.tools, Model: model, Publisher: e.pub,
		Logger: quietLogger, Now: func() time.Time { return now }})
	t.Cleanup(e.svc.Stop)
	return e
}

// say runs one turn of user in zone and returns its last frame, which
// must be a complete chat.done.
func (e *testEnv) say(user string, zone *time.Location, msg string) frame {
	e.t.Helper()
	turn, err := e.svc.Start(context.Background(), chat.StartRequest{UserID: user, Message: msg, Zone: zone})
	if err != nil {
		e.t.Fatalf("start %q: %v", msg, err)
	}
	fs := e.pub.waitEnd(e.t, user, turn.TurnID)
	end := fs[len(fs)-1]
	if end.typ() != chat.TypeDone || end.str("status") != "complete" || text(fs) != end.str("text") {
		e.t.Fatalf("%q: %v (deltas %q)", msg, end, text(fs))
	}
	return end
}

func utc(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// The offline assistant reads dates, rules, priorities and tags out of
// "add ..." with the quick-add parser, creates the task with them, says
// what it set, and names what it could not read instead of putting it in
// the title.
func TestOfflineDatesInWords(t *testing.T) {
	t.Parallel()
	e := newEnvAt(t, chat.Offline{}, refNow)
	cases := []struct {
		msg   string
		zone  *time.Location
		title string // "" when no task may be created
		due   string // UTC
		rem   string
		rule  string
		tz    string
		prio  tasks.Priority
		tags  string
		reply string // the reply contains this, with %d the new task's id
	}{
		{msg: "add buy milk tomorrow at 9 with high priority #home", zone: berlin,
			title: "Buy milk", due: "2026-12-03T08:00:00Z", tz: "Europe/Berlin", prio: tasks.PriorityHigh, tags: "home",
			reply: `Added "Buy milk" to your tasks (task %d): due Thu 3 Dec 09:00 (Europe/Berlin), priority high, tag home.`},
		{msg: "add pay rent every month on the 1st !high #home #money", zone: berlin,
			title: "Pay rent", due: "2026-12-31T23:00:00Z", rule: "FREQ=MONTHLY;BYMONTHDAY=1", tz: "Europe/Berlin", prio: tasks.PriorityHigh, tags: "home,money",
			reply: `(task %d): due Fri 1 Jan 2027 (Europe/Berlin), repeats every month on the 1st, priority high, tags home, money.`},
		{msg: "add standup every weekday at 9 remind me 10 min before", zone: berlin,
			title: "Standup", due: "2026-12-03T08:00:00Z", rem: "2026-12-03T07:50:00Z", rule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", tz: "Europe/Berlin",
			reply: `due Thu 3 Dec 09:00 (Europe/Berlin), repeats every weekday, reminder Thu 3 Dec 08:50.`},
		{msg: "please add review every 2 weeks on Friday p2", zone: berlin,
			title: "Review", due: "2026-12-03T23:00:00Z", rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", tz: "Europe/Berlin", prio: tasks.PriorityMedium,
			reply: `due Fri 4 Dec (Europe/Berlin), repeats every 2 weeks on Friday, priority medium.`},
		{msg: "remind me to call mom tomorrow at 6pm", zone: berlin,
			title: "Call mom", due: "2026-12-03T17:00:00Z", rem: "2026-12-03T17:00:00Z", tz: "Europe/Berlin",
			reply: `due Thu 3 Dec 18:00 (Europe/Berlin), reminder Thu 3 Dec 18:00.`},
		{msg: "add a task to water the plants in 3 days", zone: berlin,
			title: "Water the plants", due: "2026-12-04T23:00:00Z", tz: "Europe/Berlin",
			reply: `due Sat 5 Dec (Europe/Berlin).`},
		{msg: "add call bob at 25:00", zone: berlin,
			title: "Call bob",
			reply: `Added "Call bob" to your tasks (task %d). I couldn't read "at 25:00" (no such time of day), so I left it out of the task.`},
		{msg: "add party on the 31st of Febtember at 8pm", zone: berlin,
			title: "Party", due: "2026-12-02T19:00:00Z", tz: "Europe/Berlin",
			reply: `due Wed 2 Dec 20:00 (Europe/Berlin). I couldn't read "on the 31st of Febtember" (no such month), so I left it out of the task.`},
		{msg: "add 'Call mom tonight'", zone: berlin,
			title: "Call mom tonight", reply: `Added "Call mom tonight" to your tasks (task %d).`},
		{msg: "add Friday drinks with the team", zone: berlin,
			title: "Friday drinks with the team", reply: `Added "Friday drinks with the team" to your tasks (task %d).`},
		// No zone sent: UTC.
		{msg: "add dinner tonight", zone: nil,
			title: "Dinner", due: "2026-12-02T20:00:00Z", tz: "UTC",
			reply: `due Wed 2 Dec 20:00 (UTC).`},
		// Nothing left for a title: ask, create nothing.
		{msg: "add tomorrow at 9 #home", zone: berlin,
			reply: `What should the task be called?`},
	}
	for _, c := range cases {
		before := len(e.taskList("ana"))
		end := e.say("ana", c.zone, c.msg)
		list := e.taskList("ana")
		if c.title == "" {
			if len(list) != before || !strings.Contains(end.str("text"), c.reply) {
				t.Errorf("%q: %d tasks (was %d), reply %q", c.msg, len(list), before, end.str("text"))
			}
			continue
		}
		if len(list) != before+1 {
			t.Errorf("%q: %d tasks, want %d; reply %q", c.msg, len(list), before+1, end.str("text"))
			continue
		}
		task := list[len(list)-1]
		got := fmt.Sprintf("%q due=%s rem=%s rule=%s tz=%s prio=%s tags=%s", task.Title, utc(task.DueAt), utc(task.RemindAt),
			str(task.Recurrence), str(task.TZ), task.Priority, strings.Join(task.Tags, ","))
		prio := c.prio
		if prio == "" {
			prio = tasks.PriorityMedium
		}
		want := fmt.Sprintf("%q due=%s rem=%s rule=%s tz=%s prio=%s tags=%s", c.title, c.due, c.rem, c.rule, c.tz, prio, c.tags)
		if got != want {
			t.Errorf("%q:\n got %s\nwant %s", c.msg, got, want)
		}
		reply := c.reply
		if strings.Contains(reply, "%d") {
			reply = fmt.Sprintf(reply, task.ID)
		}
		if !strings.Contains(end.str("text"), reply) {
			t.Errorf("%q: reply %q\nwant it to contain %q", c.msg, end.str("text"), reply)
		}
	}
}

// A real model (the fake OpenAI endpoint) sees the time fields in the
// add_task schema and the local time in its instructions, and the task it
// creates with due_at, recurrence, priority and tags has them; without
// "tz" in its arguments the task gets the chat request's zone.
func TestModelSetsTaskTimes(t *testing.T) {
	t.Parallel()
	fake := openaitest.New(t)
	e := newEnvAt(t, openAI(fake), refNow)
	fake.Push(
		&openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_1", Name: "add_task", Args: []string{
			`{"title": "Pay rent", "due_at": "2027-01-01T09:00:00+01:00", "recurrence": "FREQ=MONTHLY;BYMONTHDAY=1", `,
			`"remind_at": "2027-01-01T08:30:00+01:00", "priority": "high", "tags": ["home"]}`}}}},
		&openaitest.Reply{Text: []string{"Added rent, monthly on the 1st."}},
	)
	e.say("ana", berlin, "pay rent every month on the 1st at 9, high priority, #home, remind me 30 min before")

	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests", len(reqs))
	}
	if sys := reqs[0].Text(0); !strings.Contains(sys, "Now is Wednesday, 2 December 2026, 10:30 in Europe/Berlin (UTC+01:00).") {
		t.Errorf("system prompt: %q", sys)
	}
	var addSchema map[string]any
	for _, tool := range reqs[0].Tools {
		if tool.Function.Name == "add_task" {
			_ = json.Unmarshal(tool.Function.Parameters, &addSchema)
		}
	}
	props, _ := addSchema["properties"].(map[string]any)
	for _, k := range []string{"due_at", "remind_at", "recurrence", "tz", "priority", "tags"} {
		if props[k] == nil {
			t.Errorf("add_task schema lacks %s: %v", k, addSchema)
		}
	}

	list := e.taskList("ana")
	if len(list) != 1 {
		t.Fatalf("tasks: %+v", list)
	}
	task := list[0]
	got := fmt.Sprintf("%s due=%s rem=%s rule=%s tz=%s prio=%s tags=%v", task.Title, utc(task.DueAt), utc(task.RemindAt),
		str(task.Recurrence), str(task.TZ), task.Priority, task.Tags)
	want := "Pay rent due=2027-01-01T08:00:00Z rem=2027-01-01T07:30:00Z rule=FREQ=MONTHLY;BYMONTHDAY=1 tz=Europe/Berlin prio=high tags=[home]"
	if got != want {
		t.Fatalf("task:\n got %s\nwant %s", got, want)
	}
	// The model reads the fields back with list_tasks.
	res, isErr := e.tools.Call(context.Background(), "ana", "list_tasks", json.RawMessage(`{}`))
	wantList := fmt.Sprintf(`[{"id":%d,"title":"Pay rent","completed":false,"priority":"high","due_date":"2027-01-01T08:00:00Z",`+
		`"remind_at":"2027-01-01T07:30:00Z","recurrence":"FREQ=MONTHLY;BYMONTHDAY=1","tz":"Europe/Berlin","tags":["home"]}]`, task.ID)
	if isErr || string(res) != wantList {
		t.Errorf("list_tasks = %s\nwant %s", res, wantList)
	}
}

// update_task takes the time fields too, and null clears them.
func TestToolsTimeFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	ctx := context.Background()
	call := func(ctx context.Context, name, args string) string {
		t.Helper()
		res, isErr := e.tools.Call(ctx, "ana", name, json.RawMessage(args))
		if isErr {
			t.Fatalf("%s(%s): %s", name, args, res)
		}
		return string(res)
	}
	var created chat.MutationResult
	_ = json.Unmarshal([]byte(call(chat.WithZone(ctx, berlin), "add_task", `{"title": "Gym", "due_at": "2026-12-07T07:00:00+01:00", "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=MO,TH"}`)), &created)
	task, err := e.tasks.Get(ctx, "ana", created.TaskID)
	if err != nil || str(task.Recurrence) != "FREQ=WEEKLY;BYDAY=MO,TH" || str(task.TZ) != "Europe/Berlin" || utc(task.DueAt) != "2026-12-07T06:00:00Z" {
		t.Fatalf("created: %+v (%v)", task, err)
	}
	call(ctx, "update_task", fmt.Sprintf(`{"task_id": %d, "remind_at": "2026-12-07T06:45:00+01:00", "tz": "America/New_York", "recurrence": null}`, created.TaskID))
	task, _ = e.tasks.Get(ctx, "ana", created.TaskID)
	if task.Recurrence != nil || str(task.TZ) != "America/New_York" || utc(task.RemindAt) != "2026-12-07T05:45:00Z" {
		t.Fatalf("updated: %+v", task)
	}
	// A rule the server cannot run is the model's to fix: an error result.
	res, isErr := e.tools.Call(ctx, "ana", "add_task", json.RawMessage(`{"title": "Ping", "due_at": "2026-12-07T07:00:00Z", "recurrence": "FREQ=HOURLY"}`))
	if !isErr || !strings.Contains(string(res), "recurrence") {
		t.Fatalf("hourly rule: %s (error %v)", res, isErr)
	}
	// Over MCP (no zone in the context) a task without tz stays UTC.
	_ = json.Unmarshal([]byte(call(ctx, "add_task", `{"title": "Report", "due_at": "2026-12-07T09:00:00Z"}`)), &created)
	if task, _ := e.tasks.Get(ctx, "ana", created.TaskID); task.TZ != nil {
		t.Fatalf("tz without a zone: %q", str(task.TZ))
	}
}
