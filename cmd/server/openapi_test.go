package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"tasksync/docs"
	"tasksync/internal/contract"
)

// TestOpenAPIServed checks GET /openapi.json: public, the embedded
// document as JSON, cacheable and revalidated with its ETag.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	inst := env.start(env.config(nil))

	res, err := http.Get(inst.URL + "/openapi.json") // no token
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET /openapi.json = %d, %d bytes; want 200 and the %d bytes of docs.OpenAPIJSON", res.StatusCode, len(body), len(want))
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q (%v), want 3.1.x", doc.OpenAPI, err)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, inst.URL+"/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", res.StatusCode)
	}
}

// TestOpenAPITour sends one request to every operation of docs/openapi.yaml
// and checks that a route of the server answered it (not the JSON 404/405
// of unknown routes): a documented route the server lost fails here, as an
// undocumented route the server gained fails every test that calls it. Each
// answer is checked against the document by the package's transport.
func TestOpenAPITour(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	inst := env.start(env.config(nil))
	api := contract.ValidateHTTP()
	before, _, _ := api.Stats()
	const user = "tour"

	var task struct{ ID int64 }
	if code := inst.api(t, user, http.MethodPost, "/api/"+user+"/tasks", map[string]any{"title": "tour"}, &task); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var chat struct {
		ConversationID int64 `json:"conversation_id"`
	}
	if code := inst.api(t, user, http.MethodPost, "/api/"+user+"/chat", map[string]any{"message": "show me all my tasks"}, &chat); code != http.StatusOK {
		t.Fatalf("chat: %d", code)
	}
	if after, _, _ := api.Stats(); after <= before {
		t.Fatalf("the contract transport checked no answer of api(): %d -> %d", before, after)
	}

	type op struct{ method, path string }
	var ops []op
	for path, item := range api.Doc().Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, op{method, path})
		}
	}
	// Creations first, deletions last, signing out at the very end (it
	// revokes the tokens of this second).
	rank := func(o op) int {
		switch {
		case o.path == "/api/{user_id}/sessions":
			return 4
		case o.method == http.MethodDelete:
			return 3
		case o.method == http.MethodPost:
			return 0
		case o.method == http.MethodGet:
			return 1
		}
		return 2
	}
	sort.Slice(ops, func(i, j int) bool {
		if rank(ops[i]) != rank(ops[j]) {
			return rank(ops[i]) < rank(ops[j])
		}
		return ops[i].method+ops[i].path < ops[j].method+ops[j].path
	})
	if len(ops) < 20 {
		t.Fatalf("only %d operations in the document", len(ops))
	}
	fill := strings.NewReplacer(
		"{user_id}", user,
		"/tasks/{id}", "/tasks/"+strconv.FormatInt(task.ID, 10),
		"/conversations/{id}", "/conversations/"+strconv.FormatInt(chat.ConversationID, 10),
		"{version}", "tour",
		"/js/{file}", "/js/main.js",
		"/sdk/{file}", "/sdk/tasksync-client.js",
		"{file}", "app.css",
	)
	bodies := map[string]string{
		"POST /api/{user_id}/tasks":                `{"title":"tour 2"}`,
		"PUT /api/{user_id}/tasks/{id}":            `{"title":"tour, replaced"}`,
		"PATCH /api/{user_id}/tasks/{id}":          `{"priority":"high"}`,
		"POST /api/{user_id}/chat":                 `{"message":"what's pending?"}`,
		"POST /api/{user_id}/parse":                `{"text":"Pay rent every month on the 1st !high #home","tz":"Europe/Berlin"}`,
		"POST /mcp":                                `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		"PATCH /api/{user_id}/tasks/{id}/complete": `{"completed":true}`,
		"POST /api/{user_id}/tasks/{id}/complete":  `{"completed":false}`,
		"POST /api/{user_id}/tasks/{id}/restore":   `{"version":1}`, // the task is not deleted: back to its first version
	}
	for _, o := range ops {
		path := fill.Replace(o.path)
		var rd io.Reader
		body := bodies[o.method+" "+o.path]
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(o.method, inst.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok(t, user, time.Hour))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if o.path == "/mcp" {
			req.Header.Set("Accept", "application/json, text/event-stream")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", o.method, path, err)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(b, &e)
		if (res.StatusCode == http.StatusNotFound && strings.HasPrefix(e.Error.Message, "no route for ")) ||
			(res.StatusCode == http.StatusMethodNotAllowed && e.Error.Code == "method_not_allowed") {
			t.Errorf("%s %s (documented as %s): no route of the server answered: %d %s", o.method, path, o.path, res.StatusCode, b)
		}
		if wantOK := !slices.Contains([]string{"/ws", "/mcp", "/assets/{version}/{file}", "/assets/{version}/js/{file}"}, o.path); wantOK && res.StatusCode >= 300 {
			t.Errorf("%s %s: %d %s", o.method, path, res.StatusCode, b)
		}
	}
	if un := api.Unexercised(); len(un) > 0 {
		t.Errorf("operations without a checked answer: %v", un)
	}
}
