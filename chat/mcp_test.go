package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"tasksync/chat"
)

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

// mcpSession connects the official Go SDK client to url as user.
func mcpSession(t *testing.T, url, user string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "tasksync-test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: bearer{token: token(t, user), base: http.DefaultTransport}},
	}, nil)
	if err != nil {
		t.Fatalf("connect %s as %s: %v", url, user, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("call %s: content %v", name, res.Content)
	}
	return res.Content[0].(*mcp.TextContent).Text, res.IsError
}

// The official MCP client lists the five tools, calls them as the token's
// user, and cannot reach another user's tasks.
func TestMCP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	srv := apiServer(t, e, 0)

	ana := mcpSession(t, srv.URL+"/mcp", "ana")
	list, err := ana.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
		schema, _ := json.Marshal(tool.InputSchema)
		if !strings.Contains(string(schema), `"type":"object"`) {
			t.Fatalf("%s schema: %s", tool.Name, schema)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"add_task", "complete_task", "delete_task", "list_tasks", "update_task"}) {
		t.Fatalf("tools: %v", names)
	}

	got, isErr := callTool(t, ana, "add_task", map[string]any{"title": "From MCP", "user_id": "bob"})
	var created chat.MutationResult
	if err := json.Unmarshal([]byte(got), &created); err != nil || isErr || created.Status != "created" || created.Title != "From MCP" {
		t.Fatalf("add_task: %s %v", got, isErr)
	}
	if tasks := e.taskList("ana"); len(tasks) != 1 || tasks[0].ID != created.TaskID {
		t.Fatalf("ana's tasks: %+v", tasks)
	}

	bob := mcpSession(t, srv.URL+"/mcp", "bob")
	if got, _ := callTool(t, bob, "list_tasks", nil); got != "[]" {
		t.Fatalf("bob lists %s", got)
	}
	for _, name := range []string{"complete_task", "update_task", "delete_task"} {
		got, isErr := callTool(t, bob, name, map[string]any{"task_id": created.TaskID, "title": "bob's now"})
		if !isErr || !strings.Contains(got, "not found") {
			t.Fatalf("bob %s: %s %v", name, got, isErr)
		}
	}
	if tasks := e.taskList("ana"); len(tasks) != 1 || tasks[0].Title != "From MCP" || tasks[0].Completed {
		t.Fatalf("ana's task after bob: %+v", tasks)
	}
	if got, isErr := callTool(t, ana, "complete_task", map[string]any{"task_id": created.TaskID}); isErr || !strings.Contains(got, `"status":"completed"`) {
		t.Fatalf("ana completes: %s", got)
	}

	// The same schemas as the assistant's: the time fields are there, and a
	// call with them sets them (no chat zone over MCP: tz as given).
	for _, tool := range list.Tools {
		if tool.Name != "add_task" && tool.Name != "update_task" {
			continue
		}
		schema, _ := json.Marshal(tool.InputSchema)
		for _, k := range []string{"due_at", "remind_at", "recurrence", "tz", "priority", "tags"} {
			if !strings.Contains(string(schema), `"`+k+`":{`) {
				t.Errorf("%s schema lacks %s: %s", tool.Name, k, schema)
			}
		}
	}
	got, isErr = callTool(t, ana, "add_task", map[string]any{"title": "Standup", "due_at": "2026-12-07T09:00:00-05:00",
		"recurrence": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "tz": "America/New_York", "priority": "low", "tags": []string{"work"}})
	if err := json.Unmarshal([]byte(got), &created); err != nil || isErr {
		t.Fatalf("add_task with times: %s", got)
	}
	if task, err := e.tasks.Get(context.Background(), "ana", created.TaskID); err != nil || task.DueAt == nil ||
		task.DueAt.UTC().Format(time.RFC3339) != "2026-12-07T14:00:00Z" || task.Recurrence == nil || *task.Recurrence != "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" ||
		task.TZ == nil || *task.TZ != "America/New_York" || task.Priority != "low" || !slices.Equal(task.Tags, []string{"work"}) {
		t.Fatalf("task over MCP: %+v (%v)", task, err)
	}

	// Without a token: 401 before the MCP layer.
	res, err := http.Post(srv.URL+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", res.StatusCode)
	}
}

// Invalid UTF-8 and lone surrogates in MCP tool arguments are refused,
// not stored with U+FFFD in their place (raw JSON-RPC, since an SDK client
// would encode valid text).
func TestMCPRefusesInvalidText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	srv := apiServer(t, e, 0)
	for _, title := range []string{"bad\xff\xfe", `\ud800`, `a\udc00b`} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_task","arguments":{"title":"` + title + `"}}}`
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token(t, "ana"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), "must be UTF-8 text") || !strings.Contains(string(b), `"isError":true`) {
			t.Errorf("%q: %d %s", title, res.StatusCode, b)
		}
	}
	if tasks := e.taskList("ana"); len(tasks) != 0 {
		t.Fatalf("stored: %+v", tasks)
	}
}
