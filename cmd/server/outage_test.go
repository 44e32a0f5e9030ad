package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync/internal/reqlog"
	"tasksync/internal/testdb"
)

// syncBuffer collects a server's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// restCall makes one REST call and returns status, Retry-After and the
// error code of the body (if any).
func restCall(t *testing.T, a *instance, user, method, path, body string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok(t, user, time.Hour))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, "", ""
	}
	defer res.Body.Close()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, res.Header.Get("Retry-After"), e.Error.Code
}

// Defect 9: while Postgres is unreachable (connections terminated as in a
// restart, then refused), requests are answered unavailable, 503 with
// Retry-After on REST and an unavailable error frame on the socket, and
// logged at WARN, never ERROR. When it is back, requests succeed again.
func TestDatabaseOutageAnswersUnavailable(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	logs := &syncBuffer{}
	a := env.startLogging(env.config(nil), logs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code, _, _ := restCall(t, a, "alice", "POST", "/api/alice/tasks", `{"title":"before"}`); code != 201 {
		t.Fatalf("create before the outage: %d", code)
	}
	sock := dial(t, a.WS, "alice")

	// 1. A request in flight when its connection is terminated (57P01):
	// it waits on a lock, then Postgres "restarts" under it.
	tx, err := env.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code             int
		retryAfter, body string
	}
	inFlight := make(chan answer, 1)
	go func() {
		code, ra, body := restCall(t, a, "alice", "GET", "/api/alice/tasks", "")
		inFlight <- answer{code, ra, body}
	}()
	eventually(t, "the request waits on the lock", func() bool {
		var n int
		_ = tx.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", env.DB.Name).Scan(&n)
		return n > 0
	})
	if _, err := tx.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", env.DB.Name); err != nil {
		t.Fatal(err)
	}
	got := <-inFlight
	if got.code != 503 || got.retryAfter == "" || got.retryAfter == "0" || got.body != "unavailable" {
		t.Errorf("request whose connection was terminated: %+v, want 503 unavailable with Retry-After", got)
	}
	_ = tx.Rollback(ctx)

	// 2. Postgres refuses connections for a while.
	admin, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	allow := func(on bool) error {
		_, err := admin.Exec(context.Background(), fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", env.DB.Name, on))
		return err
	}
	t.Cleanup(func() {
		if err := allow(true); err != nil {
			t.Error(err)
		}
		admin.Close(context.Background())
	})
	if err := allow(false); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", env.DB.Name); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/alice/tasks", ""},
		{"POST", "/api/alice/tasks", `{"title":"during"}`},
		{"PATCH", "/api/alice/tasks/1/complete", ""},
	} {
		code, ra, body := restCall(t, a, "alice", c.method, c.path, c.body)
		if code != 503 || ra == "" || body != "unavailable" {
			t.Errorf("%s %s during the outage: %d, Retry-After %q, code %q", c.method, c.path, code, ra, body)
		}
	}
	f := sock.request(map[string]any{"type": "task.create", "mutation_id": reqlog.NewID(), "task": map[string]any{"title": "during"}})
	if f.typ() != "error" || f["code"] != "unavailable" {
		t.Errorf("socket mutation during the outage: %v", f)
	}

	// 3. Back.
	if err := allow(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "requests succeed after the outage", func() bool {
		code, _, _ := restCall(t, a, "alice", "GET", "/api/alice/tasks", "")
		return code == 200
	})

	var warned, socketWarned bool
	for _, l := range logs.lines() {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, "request failed") {
			t.Errorf("an outage logged at ERROR: %s", l)
		}
		if strings.Contains(l, "level=WARN") && strings.Contains(l, `msg="request failed"`) && strings.Contains(l, "code=unavailable") {
			warned = true
		}
		if strings.Contains(l, "level=WARN") && strings.Contains(l, `msg="socket request failed"`) {
			socketWarned = true
		}
	}
	if !warned || !socketWarned {
		t.Errorf("no WARN line for the failed requests (REST %v, socket %v)", warned, socketWarned)
	}
}
