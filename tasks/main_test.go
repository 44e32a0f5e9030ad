package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tasksync/auth"
	"tasksync/internal/contract"
	"tasksync/internal/httpjson"
	"tasksync/internal/testdb"
)

func TestMain(m *testing.M) {
	// Every HTTP answer the tests get must match docs/openapi.yaml.
	api := contract.ValidateHTTP()
	api.PartialServer = true // the test servers mount this package's routes only
	os.Exit(api.Report(testdb.Run(m)))
}

// testSecret is the HS256 secret of every test server (32+ bytes).
var testSecret = []byte("tasksync-test-secret-0123456789-abcdef")

// apiEnv is one test's database, service and HTTP server, wired the way
// cmd/server wires them (minus CORS, logging and rate limiting).
type apiEnv struct {
	db  *testdb.DB
	svc *Service
	srv *httptest.Server
}

// newAPI starts a server over a fresh database. configure, if not nil, may
// change the Handler before it is registered (MaxBody).
func newAPI(t *testing.T, configure func(*Handler)) *apiEnv {
	t.Helper()
	db := testdb.New(t)
	v, err := auth.NewVerifier(t.Context(), auth.Config{Secret: testSecret})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	svc := NewService(db.Pool)
	h := &Handler{Service: svc}
	if configure != nil {
		configure(h)
	}
	mux := http.NewServeMux()
	h.Register(mux, func(next http.Handler) http.Handler {
		return auth.Middleware(v)(auth.RequirePathUser(next))
	})
	srv := httptest.NewServer(httpjson.Routes(mux))
	t.Cleanup(srv.Close)
	// The test client checks every answer against docs/openapi.yaml too.
	api := contract.ValidateHTTP()
	api.Serve(srv.URL)
	srv.Client().Transport = api.Transport(srv.Client().Transport)
	return &apiEnv{db: db, svc: svc, srv: srv}
}

// as returns a client that calls the API with a valid token of user.
func (e *apiEnv) as(t *testing.T, user string) *apiClient {
	t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, "", "")
	if err != nil {
		t.Fatalf("IssueHS256: %v", err)
	}
	return &apiClient{env: e, user: user, token: tok}
}

// anonymous returns a client that sends no Authorization header.
func (e *apiEnv) anonymous() *apiClient { return &apiClient{env: e} }

type apiClient struct {
	env   *apiEnv
	user  string
	token string // empty: no Authorization header
}

// tasksPath is /api/{user}/tasks plus the optional suffix ("/3", "/3/complete").
func (c *apiClient) tasksPath(suffix string) string { return "/api/" + c.user + "/tasks" + suffix }

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request and fails the test if it cannot. A non-empty body
// is sent as application/json unless headers (name, value pairs) set
// another Content-Type.
func (c *apiClient) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	res, err := c.send(t.Context(), method, path, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// send is do for goroutines other than the test's own.
func (c *apiClient) send(ctx context.Context, method, path, body string, headers ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.env.srv.URL+path, rd)
	if err != nil {
		return response{}, fmt.Errorf("new request: %w", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if len(headers)%2 != 0 {
		return response{}, fmt.Errorf("headers must be name, value pairs: %q", headers)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.env.srv.Client().Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// create POSTs body and returns the created task, failing unless 201.
func (c *apiClient) create(t *testing.T, body string) Task {
	t.Helper()
	res := c.do(t, http.MethodPost, c.tasksPath(""), body)
	res.wantStatus(t, http.StatusCreated)
	return res.task(t)
}

// get returns a task, failing unless 200.
func (c *apiClient) get(t *testing.T, id int64) Task {
	t.Helper()
	res := c.do(t, http.MethodGet, c.tasksPath(idPath(id)), "")
	res.wantStatus(t, http.StatusOK)
	return res.task(t)
}

func idPath(id int64) string { return "/" + strconv.FormatInt(id, 10) }

func (r response) wantStatus(t *testing.T, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body: %s", r.status, want, r.body)
	}
}

func (r response) task(t *testing.T) Task {
	t.Helper()
	var task Task
	if err := json.Unmarshal(r.body, &task); err != nil {
		t.Fatalf("decode task %s: %v", r.body, err)
	}
	return task
}

func (r response) tasks(t *testing.T) []Task {
	t.Helper()
	var list []Task
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatalf("decode task list %s: %v", r.body, err)
	}
	if list == nil {
		t.Fatalf("list body is %s, want a JSON array", r.body)
	}
	return list
}

// jsonObject decodes the body as a generic JSON object.
func (r response) jsonObject(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || m == nil {
		t.Fatalf("body %s is not a JSON object: %v", r.body, err)
	}
	return m
}

// apiError is the inside of the one error body shape.
type apiError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
	Current json.RawMessage   `json:"current"`
}

// wantError checks the status, that the body has exactly the error shape
// {"error":{"code","message","fields"?,"current"?}} with a JSON content
// type, and that the code is code.
func (r response) wantError(t *testing.T, status int, code string) apiError {
	t.Helper()
	r.wantStatus(t, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &outer); err != nil {
		t.Fatalf("error body %s is not a JSON object: %v", r.body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("error body %s: want exactly one key \"error\"", r.body)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(outer["error"], &inner); err != nil {
		t.Fatalf("error body %s: \"error\" is not an object: %v", r.body, err)
	}
	for k := range inner {
		if !slices.Contains([]string{"code", "message", "fields", "current"}, k) {
			t.Errorf("error body %s: unexpected key %q", r.body, k)
		}
	}
	var e apiError
	dec := json.NewDecoder(bytes.NewReader(outer["error"]))
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if e.Code != code {
		t.Errorf("error code %q, want %q (body %s)", e.Code, code, r.body)
	}
	if strings.TrimSpace(e.Message) == "" {
		t.Errorf("error body %s: empty message", r.body)
	}
	if _, ok := inner["fields"]; ok && len(e.Fields) == 0 {
		t.Errorf("error body %s: fields present but empty", r.body)
	}
	return e
}

// countRows returns the result of a count(*) query.
func countRows(t *testing.T, db *testdb.DB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// mustJSONMap decodes b as a JSON object for comparisons that must not
// depend on key order or whitespace.
func mustJSONMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}
