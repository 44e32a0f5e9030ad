package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"tasksync/chat"
	"tasksync/tasks"
)

// The tools answer in the seed's shapes, act only for the given user, and
// turn every problem into an {"error": ...} result.
func TestTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	ctx := context.Background()
	call := func(user, name, args string) (string, bool) {
		t.Helper()
		res, isErr := e.tools.Call(ctx, user, name, json.RawMessage(args))
		if !json.Valid(res) {
			t.Fatalf("%s(%s): result is not JSON: %s", name, args, res)
		}
		return string(res), isErr
	}
	expect := func(user, name, args, want string, wantErr bool) {
		t.Helper()
		got, isErr := call(user, name, args)
		if got != want || isErr != wantErr {
			t.Fatalf("%s(%s) = %s (error %v), want %s (error %v)", name, args, got, isErr, want, wantErr)
		}
	}

	got, isErr := call("ana", "add_task", `{"title": "Buy groceries", "description": "milk", "user_id": "bob", "tags": ["home"], "due_date": "2030-01-02", "priority": "high"}`)
	var created chat.MutationResult
	if err := json.Unmarshal([]byte(got), &created); err != nil || isErr || created.Status != "created" || created.Title != "Buy groceries" {
		t.Fatalf("add_task: %s", got)
	}
	id := created.TaskID
	expect("ana", "add_task", `{"title":"Call mom"}`, fmt.Sprintf(`{"task_id":%d,"status":"created","title":"Call mom"}`, id+1), false)
	if len(e.taskList("bob")) != 0 {
		t.Fatal("user_id in the arguments was obeyed")
	}

	expect("ana", "list_tasks", `{}`, fmt.Sprintf(`[{"id":%d,"title":"Buy groceries","completed":false,"description":"milk","priority":"high","due_date":"2030-01-02T00:00:00Z","tags":["home"]},`+
		`{"id":%d,"title":"Call mom","completed":false,"priority":"medium"}]`, id, id+1), false)
	expect("ana", "complete_task", fmt.Sprintf(`{"task_id": %d}`, id+1), fmt.Sprintf(`{"task_id":%d,"status":"completed","title":"Call mom"}`, id+1), false)
	expect("ana", "list_tasks", `{"status":"completed"}`, fmt.Sprintf(`[{"id":%d,"title":"Call mom","completed":true,"priority":"medium"}]`, id+1), false)
	expect("ana", "list_tasks", `{"status":"pending"}`, fmt.Sprintf(`[{"id":%d,"title":"Buy groceries","completed":false,"description":"milk","priority":"high","due_date":"2030-01-02T00:00:00Z","tags":["home"]}]`, id), false)
	// A task id as a string, as models sometimes send it.
	expect("ana", "update_task", fmt.Sprintf(`{"task_id": "%d", "title": "Call mom tonight"}`, id+1), fmt.Sprintf(`{"task_id":%d,"status":"updated","title":"Call mom tonight"}`, id+1), false)
	// Arguments as a JSON string holding the object.
	expect("ana", "update_task", fmt.Sprintf(`"{\"task_id\": %d, \"description\": \"2 litres\"}"`, id), fmt.Sprintf(`{"task_id":%d,"status":"updated","title":"Buy groceries"}`, id), false)

	// Another user's task is not found, for every tool.
	for _, name := range []string{"complete_task", "update_task", "delete_task"} {
		expect("bob", name, fmt.Sprintf(`{"task_id": %d, "title": "mine now"}`, id), fmt.Sprintf(`{"error":"task %d not found"}`, id), true)
	}
	expect("bob", "list_tasks", `{}`, `[]`, false)

	// Problems are results the model can read.
	expect("ana", "add_task", `{}`, `{"error":"invalid arguments: title is required and must not be blank"}`, true)
	expect("ana", "add_task", `{"title": "  "}`, `{"error":"invalid arguments: title is required and must not be blank"}`, true)
	expect("ana", "add_task", `{"title": "x", "priority": "urgent"}`, `{"error":"invalid arguments: priority must be one of low, medium, high"}`, true)
	expect("ana", "update_task", fmt.Sprintf(`{"task_id": %d}`, id), `{"error":"nothing to update: give a title, description, priority, due_at, remind_at, recurrence, tz or tags"}`, true)
	expect("ana", "complete_task", `{}`, `{"error":"invalid arguments: task_id is required: the id of one of the user's tasks"}`, true)
	expect("ana", "complete_task", `{"task_id": -4}`, `{"error":"invalid arguments: task_id must be a positive whole number"}`, true)
	expect("ana", "complete_task", `{"task_id": "+1"}`, `{"error":"invalid arguments: task_id must be a positive whole number"}`, true)
	expect("ana", "complete_task", `{"task_id": "01"}`, `{"error":"invalid arguments: task_id must be a positive whole number"}`, true)
	expect("ana", "complete_task", `{"task_id": 1.5}`, `{"error":"invalid arguments: task_id must be a whole number"}`, true)
	expect("ana", "list_tasks", `{"status": "someday"}`, `{"error":"invalid arguments: status must be one of all, pending, completed"}`, true)
	expect("ana", "list_tasks", `{"status":`, `{"error":"arguments must be a JSON object"}`, true)
	// Text that decoding would alter is refused, not stored with U+FFFD.
	expect("ana", "add_task", "{\"title\": \"bad\xff\xfe\"}", `{"error":"invalid arguments: title must be UTF-8 text without NUL characters"}`, true)
	expect("ana", "add_task", `{"title": "x", "tags": ["\udc00"]}`, `{"error":"invalid arguments: tags[0] must be UTF-8 text without NUL characters"}`, true)
	expect("ana", "update_task", fmt.Sprintf(`{"task_id": %d, "description": "\ud800"}`, id), `{"error":"invalid arguments: description must be UTF-8 text without NUL characters"}`, true)
	expect("ana", "add_task", `"{\"title\": \"\ud800\"}"`, `{"error":"arguments must be UTF-8 text: no invalid bytes or lone surrogate escapes"}`, true)
	expect("ana", "fly_to_mars", `{}`, `{"error":"unknown tool \"fly_to_mars\"; the tools are add_task, list_tasks, complete_task, update_task, delete_task"}`, true)

	expect("ana", "delete_task", fmt.Sprintf(`{"task_id": %d}`, id), fmt.Sprintf(`{"task_id":%d,"status":"deleted","title":"Buy groceries"}`, id), false)
	expect("ana", "delete_task", fmt.Sprintf(`{"task_id": %d}`, id), fmt.Sprintf(`{"error":"task %d not found"}`, id), true)
}

func TestToolSpecsAreSchemas(t *testing.T) {
	specs := chat.NewTools(nil, nil).Specs()
	if len(specs) != 5 {
		t.Fatalf("%d tools", len(specs))
	}
	for _, s := range specs {
		var schema struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(s.Parameters, &schema); err != nil || schema.Type != "object" || s.Description == "" {
			t.Fatalf("%s: %v %s", s.Name, err, s.Parameters)
		}
		if _, ok := schema.Properties["user_id"]; ok {
			t.Fatalf("%s offers user_id", s.Name)
		}
		// The limits shown are the task service's.
		var p struct {
			Title struct {
				MaxLength int `json:"maxLength"`
			} `json:"title"`
			Description struct {
				MaxLength int `json:"maxLength"`
			} `json:"description"`
			Tags struct {
				MaxItems int `json:"maxItems"`
				Items    struct {
					MaxLength int `json:"maxLength"`
				} `json:"items"`
			} `json:"tags"`
		}
		props, _ := json.Marshal(schema.Properties)
		if err := json.Unmarshal(props, &p); err != nil {
			t.Fatal(err)
		}
		if _, ok := schema.Properties["title"]; ok && (p.Title.MaxLength != tasks.MaxTitle || p.Description.MaxLength != tasks.MaxDescription ||
			p.Tags.MaxItems != tasks.MaxTags || p.Tags.Items.MaxLength != tasks.MaxTag) {
			t.Errorf("%s: limits %+v", s.Name, p)
		}
	}
}
