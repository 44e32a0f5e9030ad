package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func mcpConnect(t *testing.T, inst *instance, user string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: inst.URL + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{token: tok(t, user, time.Hour), base: http.DefaultTransport}}}, nil)
	if err != nil {
		t.Fatalf("MCP connect as %s: %v", user, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestChangeLogRecordsEveryActor: a change made over a socket, REST, the
// assistant, MCP and plain SQL is logged with who made it (and which
// socket session or conversation), through the real server.
func TestChangeLogRecordsEveryActor(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	ana := dial(t, a.WS, "ana")

	created := ana.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "by socket",
		"due_at": "2026-12-07T09:00:00+01:00", "recurrence": "FREQ=WEEKLY;BYDAY=MO", "tz": "Europe/Berlin", "remind_at": "2026-12-07T08:45:00+01:00"}})
	task := frame(created["task"].(map[string]any))
	if created.typ() != "reply" || task["due_at"] != "2026-12-07T08:00:00.000000Z" || task["due_date"] != task["due_at"] ||
		task["recurrence"] != "FREQ=WEEKLY;BYDAY=MO" || task["tz"] != "Europe/Berlin" || task["remind_at"] != "2026-12-07T07:45:00.000000Z" {
		t.Fatalf("task.create reply: %v", created)
	}
	id := int64(task["id"].(float64))
	if ev := ana.next("task.created"); fmt.Sprint(ev.task()) != fmt.Sprint(map[string]any(task)) {
		t.Errorf("event %v\nreply %v", ev.task(), task)
	}
	if r := ana.request(map[string]any{"type": "task.update", "task_id": id, "task": map[string]any{"tz": "Mars/Olympus"}}); r["code"] != "invalid" {
		t.Errorf("unknown tz over the socket: %v", r)
	}

	var updated map[string]any
	if code := a.api(t, "ana", http.MethodPatch, fmt.Sprintf("/api/ana/tasks/%d", id), map[string]any{"title": "by rest"}, &updated); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	reply := ana.request(map[string]any{"type": "chat.send", "message": "add a task to buy groceries"})
	ana.turnFrames(reply["turn_id"].(string))
	conversation := fmt.Sprint(int64(reply["conversation_id"].(float64)))

	cs := mcpConnect(t, a, "ana")
	if got, isErr := mcpCall(t, cs, "update_task", map[string]any{"task_id": id, "title": "by mcp"}); isErr {
		t.Fatalf("update_task: %s", got)
	}
	if _, err := env.DB.Pool.Exec(t.Context(), `UPDATE tasks SET title = 'by sql' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}

	rows, err := env.DB.Pool.Query(t.Context(), `SELECT op, task, actor, coalesce(session, '-') FROM task_events WHERE user_id = 'ana' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var op, actor, session string
		var doc json.RawMessage
		if err := rows.Scan(&op, &doc, &actor, &session); err != nil {
			t.Fatal(err)
		}
		var tk struct{ Title string }
		_ = json.Unmarshal(doc, &tk)
		got = append(got, fmt.Sprintf("%s %q %s %s", op, tk.Title, actor, session))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf(`created "by socket" socket %s`, ana.hello["session_id"]),
		`updated "by rest" rest -`,
		`created "Buy groceries" assistant ` + conversation,
		`updated "by mcp" mcp -`,
		`updated "by sql" sql -`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("change log\n got %q\nwant %q", got, want)
	}

	// The same, as the history endpoint shows it, newest first.
	var hist struct {
		TaskID   int64 `json:"task_id"`
		Versions []struct {
			Op      string          `json:"op"`
			Actor   string          `json:"actor"`
			Session *string         `json:"session"`
			Task    json.RawMessage `json:"task"`
		} `json:"versions"`
	}
	if code := a.api(t, "ana", http.MethodGet, fmt.Sprintf("/api/ana/tasks/%d/history", id), nil, &hist); code != http.StatusOK || hist.TaskID != id {
		t.Fatalf("history: %d %+v", code, hist)
	}
	var shown []string
	for _, v := range hist.Versions {
		sess := "-"
		if v.Session != nil {
			sess = *v.Session
		}
		var tk struct{ Title string }
		_ = json.Unmarshal(v.Task, &tk)
		shown = append(shown, fmt.Sprintf("%s %q %s %s", v.Op, tk.Title, v.Actor, sess))
	}
	if wantShown := []string{want[4], want[3], want[1], want[0]}; fmt.Sprint(shown) != fmt.Sprint(wantShown) {
		t.Errorf("history\n got %q\nwant %q", shown, wantShown)
	}
}

// TestRestoreReachesEveryInstance: a task deleted on one instance and
// restored over the socket of another comes back with its id, as one
// task.created event that sockets on both instances see; task.history
// lists its versions with who made each (socket sessions, REST), and
// another user can neither read nor restore it.
func TestRestoreReachesEveryInstance(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	b := env.start(env.config(nil))
	onA, onB := dial(t, a.WS, "ana"), dial(t, b.WS, "ana")
	following(t, a, "ana", onA, onB)

	created := onA.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "keep me", "tags": []string{"x"}}})
	id := int64(created["task_id"].(float64))
	for _, c := range []*wsClient{onA, onB} {
		c.next("task.created")
	}
	var patched map[string]any
	if code := b.api(t, "ana", http.MethodPatch, fmt.Sprintf("/api/ana/tasks/%d", id), map[string]any{"priority": "high"}, &patched); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	if r := onB.request(map[string]any{"type": "task.delete", "task_id": id}); r["op"] != "deleted" {
		t.Fatalf("delete: %v", r)
	}
	for _, c := range []*wsClient{onA, onB} {
		c.next("task.updated")
		if ev := c.next("task.deleted"); ev["task_id"] != float64(id) {
			t.Fatalf("deleted event %v", ev)
		}
	}

	// Another user sees nothing of it and cannot bring it back.
	eve := dial(t, a.WS, "eve")
	if r := eve.request(map[string]any{"type": "task.restore", "task_id": id}); r.typ() != "error" || r["code"] != "not_found" {
		t.Fatalf("eve restores: %v", r)
	}
	if r := eve.request(map[string]any{"type": "task.history", "task_id": id}); r.typ() != "error" || r["code"] != "not_found" {
		t.Fatalf("eve reads history: %v", r)
	}

	reply := onA.request(map[string]any{"type": "task.restore", "task_id": id, "mutation_id": "undo-delete"})
	task := frame(reply["task"].(map[string]any))
	if reply.typ() != "reply" || reply["op"] != "created" || task["id"] != float64(id) || task["priority"] != "high" || task["version"] != 3.0 {
		t.Fatalf("restore reply: %v", reply)
	}
	for _, c := range []*wsClient{onA, onB} {
		ev := c.next("task.created")
		if fmt.Sprint(ev.task()) != fmt.Sprint(map[string]any(task)) {
			t.Errorf("event %v\nreply %v", ev.task(), task)
		}
	}
	var got map[string]any
	if code := b.api(t, "ana", http.MethodGet, fmt.Sprintf("/api/ana/tasks/%d", id), nil, &got); code != http.StatusOK || got["version"] != 3.0 {
		t.Fatalf("GET after restore: %d %v", code, got)
	}
	eve.quiet()

	hist := onB.request(map[string]any{"type": "task.history", "task_id": id})
	if hist.typ() != "reply" || hist["task_id"] != float64(id) {
		t.Fatalf("history: %v", hist)
	}
	var lines []string
	for _, raw := range hist["versions"].([]any) {
		v := raw.(map[string]any)
		lines = append(lines, fmt.Sprintf("%s %v %v", v["op"], v["actor"], v["session"]))
	}
	sa, sb := onA.hello["session_id"], onB.hello["session_id"]
	want := []string{
		fmt.Sprintf("created socket %v", sa), fmt.Sprintf("deleted socket %v", sb),
		"updated rest <nil>", fmt.Sprintf("created socket %v", sa),
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("history\n got %q\nwant %q", lines, want)
	}
	// Undo of the edit: version 1 again, as an update.
	if r := onB.request(map[string]any{"type": "task.restore", "task_id": id, "version": 1}); r["op"] != "updated" || frame(r["task"].(map[string]any))["priority"] != "medium" {
		t.Fatalf("restore version 1: %v", r)
	}
	for _, c := range []*wsClient{onA, onB} {
		if ev := c.next("task.updated"); ev.task()["priority"] != "medium" || ev.task()["version"] != 4.0 {
			t.Errorf("event %v", ev)
		}
	}
	if r := onB.request(map[string]any{"type": "task.restore", "task_id": id}); r["code"] != "conflict" {
		t.Errorf("undelete of a present task: %v", r)
	}
	if r := onB.request(map[string]any{"type": "task.history", "task_id": id, "limit": 0}); r["code"] != "invalid" {
		t.Errorf("limit 0: %v", r)
	}
}
