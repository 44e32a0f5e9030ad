package contract

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const validTask = `{"id":1,"user_id":"u","title":"Buy milk","description":"","completed":false,"priority":"medium","tags":[],"due_date":null,"due_at":null,"remind_at":null,"recurrence":null,"tz":null,"series_id":null,"created_at":"2026-04-30T09:12:01.123456Z","updated_at":"2026-04-30T09:12:01.123456Z","version":1}`

// answer is what the fake server says to one request.
type answer struct {
	status int
	header map[string]string
	body   string
}

// fake serves fixed answers by "METHOD path" and returns a client whose
// transport checks them, and the checker.
func fake(t *testing.T, answers map[string]answer) (*http.Client, *OpenAPI, string) {
	t.Helper()
	api, err := LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			t.Errorf("no answer for %s %s", r.Method, r.URL.Path)
			w.WriteHeader(599)
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" && a.body != "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	api.Serve(srv.URL)
	return &http.Client{Transport: api.Transport(srv.Client().Transport)}, api, srv.URL
}

// get sends one request and reads the whole answer; the error is the
// contract's, if any.
func get(c *http.Client, method, url string) error {
	req, _ := http.NewRequest(method, url, nil)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, err = io.ReadAll(res.Body)
	return err
}

// TestOpenAPIRejects proves that the check fails on wrong answers (so that
// the hooks in the test suites cannot pass silently), and accepts right
// ones.
func TestOpenAPIRejects(t *testing.T) {
	taskHeaders := map[string]string{"ETag": `"1"`}
	sse := map[string]string{"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
	started := `{"type":"chat.started","conversation_id":1,"turn_id":"t_1","message_id":1,"message":"hi","created":true,"title":"hi","model":"offline"}`
	done := `{"type":"chat.done","conversation_id":1,"turn_id":"t_1","message_id":2,"status":"complete","text":"Hello","tool_calls":[]}`
	cases := []struct {
		name, method, path string
		answer             answer
		want               string // "" = accepted; else a substring of the error
	}{
		{"right health", "GET", "/healthz", answer{200, nil, `{"status":"ok"}`}, ""},
		{"wrong value", "GET", "/healthz", answer{200, nil, `{"status":"fine"}`}, "doesn't match schema"},
		{"extra field", "GET", "/healthz", answer{200, nil, `{"status":"ok","uptime":3}`}, "doesn't match schema"},
		{"undocumented status", "GET", "/healthz", answer{418, nil, `{"error":{"code":"internal","message":"x"}}`}, "status 418 is not documented"},
		{"right task", "GET", "/api/u/tasks/1", answer{200, taskHeaders, validTask}, ""},
		{"task without ETag", "GET", "/api/u/tasks/1", answer{200, nil, validTask}, "ETag"},
		{"task with a bad time", "GET", "/api/u/tasks/1", answer{200, taskHeaders, strings.Replace(validTask, ".123456Z", "Z", 1)}, "doesn't match schema"},
		{"error with the wrong code for its status", "GET", "/api/u/tasks/2", answer{404, nil, `{"error":{"code":"forbidden","message":"x"}}`}, "doesn't match schema"},
		{"503 without Retry-After", "GET", "/api/u/tasks/3", answer{503, nil, `{"error":{"code":"unavailable","message":"x"}}`}, "Retry-After"},
		{"304 without body", "GET", "/api/u/tasks/4", answer{304, taskHeaders, ""}, ""},
		{"undocumented route", "GET", "/api/u/secrets", answer{200, nil, `{}`}, "undocumented route"},
		{"unknown path probe", "GET", "/nothing-here", answer{404, nil, `{"error":{"code":"not_found","message":"no route for GET /nothing-here"}}`}, ""},
		{"unknown path, other body", "GET", "/nothing-else", answer{404, nil, `{"error":{"code":"not_found","message":"task 3 not found"}}`}, "NoRoute"},
		{"other method", "DELETE", "/healthz", answer{405, map[string]string{"Allow": "GET, HEAD"}, `{"error":{"code":"method_not_allowed","message":"DELETE is not allowed on /healthz"}}`}, ""},
		{"other method without Allow", "PUT", "/healthz", answer{405, nil, `{"error":{"code":"method_not_allowed","message":"PUT is not allowed on /healthz"}}`}, "Allow"},
		{"other method served", "PATCH", "/healthz", answer{200, nil, `{"status":"ok"}`}, "undocumented route"},
		{"right stream", "POST", "/api/u/chat", answer{200, sse, "event: chat.started\ndata: " + started + "\n\n: keep-alive\n\nevent: chat.done\ndata: " + done + "\n\n"}, ""},
		{"wrong event", "POST", "/api/u/chat", answer{200, sse, "event: chat.started\ndata: {\"type\":\"chat.started\"}\n\n"}, `event "chat.started"`},
		{"unknown event", "POST", "/api/u/chat", answer{200, sse, "event: chat.thinking\ndata: {}\n\n"}, "not in x-sse-events"},
		{"stream cut short", "POST", "/api/u/chat", answer{200, sse, "event: chat.started\ndata: " + started + "\n\n"}, "ends after"},
	}
	for _, c := range cases { // one server per case: several cases share a path
		t.Run(c.name, func(t *testing.T) {
			client, api, url := fake(t, map[string]answer{c.method + " " + c.path: c.answer})
			err := get(client, c.method, url+c.path)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("rejected a right answer: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted a wrong answer (want an error with %q)", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
			if got := len(api.Failures()); (c.want != "") != (got == 1) {
				t.Errorf("%d failures kept, want %v", got, c.want != "")
			}
			if c.want != "" && api.report(io.Discard, 0, false) != 1 {
				t.Error("Report passed a run with a mismatch")
			}
		})
	}
}

// TestOpenAPIOtherServers checks that answers of servers not under test
// (a fake model endpoint) are not checked.
func TestOpenAPIOtherServers(t *testing.T) {
	api, err := LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	client := &http.Client{Transport: api.Transport(nil)}
	if err := get(client, "GET", srv.URL+"/v1/chat/completions"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := api.Stats(); n != 0 {
		t.Errorf("%d answers checked, want 0", n)
	}
}

// TestOpenAPIDocument checks what the document promises a client generator:
// an operationId on every operation, unique.
func TestOpenAPIDocument(t *testing.T) {
	api, err := LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for path, item := range api.Doc().Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %s on %s and %s", op.OperationID, where, other)
			}
			ids[op.OperationID] = where
		}
	}
}
