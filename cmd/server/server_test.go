package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync/internal/reqlog"
	"tasksync/internal/testdb"
)

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL":    "postgres://u@127.0.0.1/db",
		"AUTH_JWT_SECRET": testSecret,
	}
	cases := []struct{ key, value, want string }{
		{"DATABASE_URL", "", "DATABASE_URL: is required"},
		{"DATABASE_URL", "mysql://x", "DATABASE_URL: must be a postgres:// URL"},
		{"AUTH_JWT_SECRET", "short", "AUTH_JWT_SECRET: must be at least 32 bytes"},
		{"AUTH_JWKS_URL", "ftp://x", "AUTH_JWKS_URL: must be an http(s) URL"},
		{"LISTEN_ADDR", "8080", "LISTEN_ADDR: must be host:port"},
		{"REDIS_URL", "http://x", "REDIS_URL: must be a redis://"},
		{"WS_FRAME_RATE", "fast", "WS_FRAME_RATE: must be a whole number"},
		{"SHUTDOWN_TIMEOUT", "forever", "SHUTDOWN_TIMEOUT: must be a duration"},
		{"LOG_FORMAT", "xml", "LOG_FORMAT: must be text or json"},
		{"CORS_ALLOWED_ORIGINS", "example.com", "CORS_ALLOWED_ORIGINS: \"example.com\" is not an origin"},
		{"AUTO_MIGRATE", "perhaps", "AUTO_MIGRATE: must be true or false"},
		{"PPROF_ADDR", "0.0.0.0:6060", "PPROF_ADDR: must be a loopback address"},
		{"DATABASE_MAX_CONNS", "0", "DATABASE_MAX_CONNS: must be a whole number"},
		{"HTTP_BODY_TIMEOUT", "0s", "HTTP_BODY_TIMEOUT: must be a duration"},
		{"METRICS_ADDR", "9090", "METRICS_ADDR: must be host:port"},
	}
	for _, c := range cases {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[c.key] = c.value
		_, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%q: error %v, want one line containing %q", c.key, c.value, err, c.want)
		}
	}
	// Neither secret nor JWKS: no token could ever verify.
	_, err := loadConfig(func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return base[k], true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "AUTH_JWT_SECRET") {
		t.Errorf("no auth: %v", err)
	}
	// BETTER_AUTH_SECRET is an alias of AUTH_JWT_SECRET.
	cfg, err := loadConfig(func(k string) (string, bool) {
		switch k {
		case "DATABASE_URL":
			return base[k], true
		case "BETTER_AUTH_SECRET":
			return testSecret, true
		}
		return "", false
	})
	if err != nil || cfg.Auth.Secret != testSecret {
		t.Errorf("BETTER_AUTH_SECRET: %v", err)
	}
}

func TestRunRejectsBadConfigAndCommands(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(string) (string, bool) { return "", false }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("serve without config: %v", err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, func(string) (string, bool) { return "", false }, &out, &errOut); err == nil {
		t.Fatal("unknown command accepted")
	}
	lookup := func(k string) (string, bool) {
		if k == "AUTH_JWT_SECRET" {
			return testSecret, true
		}
		return "", false
	}
	out.Reset()
	if err := run(context.Background(), []string{"token", "alice", "--ttl", "5m"}, lookup, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimSpace(out.String()), "."); n != 2 {
		t.Fatalf("token output %q", out.String())
	}
}

func TestOperationsEndpointsAndCORS(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(map[string]string{"CORS_ALLOWED_ORIGINS": "http://localhost:3000"}))

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		res, err := http.Get(a.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d, request id %q", path, res.StatusCode, res.Header.Get("X-Request-Id"))
		}
	}
	preflight := func(origin string) http.Header {
		req, _ := http.NewRequest(http.MethodOptions, a.URL+"/api/alice/tasks", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header
	}
	h := preflight("http://localhost:3000")
	if h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("allowed origin preflight: %v", h)
	}
	if h := preflight("https://evil.example"); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("unlisted origin got CORS headers: %v", h)
	}
	// Unknown routes answer in the one error shape.
	var body map[string]map[string]any
	if code := a.api(t, "alice", "GET", "/api/alice/nothing-here", nil, &body); code != 404 || body["error"]["code"] != "not_found" {
		t.Errorf("unknown route: %d %v", code, body)
	}
}

// `server migrate` needs the database only: no auth secret, nothing else.
func TestMigrateNeedsOnlyTheDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	name := "tasksync_t_" + strings.ToLower(reqlog.NewID())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	dbURL := u.String()

	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return dbURL, true
		}
		return "", false
	}
	if err := run(ctx, []string{"migrate"}, lookup, &out, &errOut); err != nil {
		t.Fatalf("migrate with DATABASE_URL only: %v\n%s", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "schema at version ") || strings.HasPrefix(out.String(), "schema at version 0\n") {
		t.Fatalf("migrate printed %q", out.String())
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var tasksTable bool
	if err := db.QueryRow(ctx, "SELECT to_regclass('tasks') IS NOT NULL").Scan(&tasksTable); err != nil || !tasksTable {
		t.Fatalf("no tasks table after migrate (%v)", err)
	}
	// Still refused without a database, naming the variable.
	err = run(ctx, []string{"migrate"}, func(string) (string, bool) { return "", false }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("migrate without DATABASE_URL: %v", err)
	}
}

// With METRICS_ADDR, /metrics is served on that listener and not on the
// API's; without it, on the API's as before.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	pub := env.start(env.config(nil))
	if code, body := get(pub.URL + "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("default /metrics on the API port: %d", code)
	}

	priv := env.start(env.config(map[string]string{"METRICS_ADDR": "127.0.0.1:0"}))
	if priv.Metrics == priv.URL+"/metrics" {
		t.Fatalf("METRICS_ADDR not used: %s", priv.Metrics)
	}
	if code, body := get(priv.Metrics); code != 200 || !strings.Contains(body, "tasksync_mutations_total") {
		t.Errorf("/metrics on METRICS_ADDR: %d", code)
	}
	if code, body := get(priv.URL + "/metrics"); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("/metrics on the API port with METRICS_ADDR set: %d %s", code, body)
	}
	if code, _ := get(priv.URL + "/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}
