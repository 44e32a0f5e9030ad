package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tasksync/auth"
	"tasksync/internal/contract"
	"tasksync/internal/reqlog"
	"tasksync/internal/testdb"
)

func TestMain(m *testing.M) {
	// Every HTTP answer the tests get must match docs/openapi.yaml.
	api := contract.ValidateHTTP()
	os.Exit(api.Report(testdb.Run(m)))
}

const testSecret = "test-secret-0123456789abcdef-0123456789"

// testRedisURL is the shared Redis of the test machine; tests isolate
// themselves with a unique REDIS_PREFIX.
func testRedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// instance is one running server started by startInstance.
type instance struct {
	t       *testing.T
	URL     string // http://127.0.0.1:port
	WS      string // ws://127.0.0.1:port/ws
	Metrics string // http://host:port/metrics: on URL, or on METRICS_ADDR when set
	Cfg     Config
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// testEnv is the environment of a test cluster: one database, one Redis
// prefix; instances started from it share both.
type testEnv struct {
	t      *testing.T
	DB     *testdb.DB
	prefix string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return &testEnv{t: t, DB: testdb.New(t), prefix: "tasksync-test-" + strings.ToLower(reqlog.NewID())}
}

// config returns a Config as loadConfig builds it from env, plus overrides.
func (e *testEnv) config(overrides map[string]string) Config {
	e.t.Helper()
	env := map[string]string{
		"DATABASE_URL":    e.DB.URL,
		"REDIS_URL":       testRedisURL(),
		"REDIS_PREFIX":    e.prefix,
		"LISTEN_ADDR":     "127.0.0.1:0",
		"AUTH_JWT_SECRET": testSecret,
		"AUTO_MIGRATE":    "false", // testdb databases are migrated
		"LOG_LEVEL":       "warn",
		// Tests drive sockets hard; the rate limit has its own test.
		"WS_FRAME_RATE":  "100000",
		"WS_FRAME_BURST": "100000",
		// Reminder jobs are looked for every 100ms (1s in production).
		"REMINDER_POLL_INTERVAL": "100ms",
	}
	for k, v := range overrides {
		env[k] = v
	}
	cfg, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	cfg.reminderTestOnly = true
	return cfg
}

// start runs serve() with cfg until the test ends (or Stop).
func (e *testEnv) start(cfg Config) *instance {
	e.t.Helper()
	return e.startLogging(cfg, nil)
}

// startLogging is start with the server's log also written to logs.
func (e *testEnv) startLogging(cfg Config, logs io.Writer) *instance {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan listening, 1)
	inst := &instance{t: e.t, Cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	var out io.Writer = testWriter{e.t}
	if logs != nil {
		out = io.MultiWriter(out, logs)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))
	go func() { inst.done <- serve(ctx, cfg, logger, func(l listening) { addrCh <- l }) }()
	select {
	case l := <-addrCh:
		inst.URL = "http://" + l.API.String()
		contract.ValidateHTTP().Serve(inst.URL) // its answers must match docs/openapi.yaml
		inst.WS = "ws://" + l.API.String() + "/ws"
		inst.Metrics = inst.URL + "/metrics"
		if l.Metrics != nil {
			inst.Metrics = "http://" + l.Metrics.String() + "/metrics"
			contract.ValidateHTTP().Serve("http://" + l.Metrics.String())
		}
	case err := <-inst.done:
		cancel()
		e.t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		e.t.Fatal("serve did not start listening within 30s")
	}
	e.t.Cleanup(inst.Stop)
	return inst
}

// Stop shuts the instance down and waits for serve to return.
func (i *instance) Stop() {
	if i.stopped {
		return
	}
	i.stopped = true
	i.cancel()
	select {
	case err := <-i.done:
		if err != nil {
			i.t.Errorf("serve returned: %v", err)
		}
	case <-time.After(30 * time.Second):
		i.t.Error("serve did not stop within 30s")
	}
}

// testWriter sends server logs to t.Log so that they show with failures.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func tok(t testing.TB, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.IssueHS256([]byte(testSecret), user, ttl, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// api calls the REST API as user and decodes the JSON answer into out (if
// not nil). It returns the status code.
func (i *instance) api(t testing.TB, user, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, i.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok(t, user, time.Hour))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return res.StatusCode
}

// frame is a decoded server frame.
type frame map[string]any

func (f frame) typ() string { s, _ := f["type"].(string); return s }
func (f frame) seq() int64  { n, _ := f["seq"].(float64); return int64(n) }
func (f frame) task() map[string]any {
	m, _ := f["task"].(map[string]any)
	return m
}

// wsClient is a test socket that reads frames in the background. Every
// frame the server sends is checked against its JSON Schema in docs/schemas:
// one that does not match fails the test (with the frame and the schema's
// verdict) and is still delivered, so the test goes on to say what it saw.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	closed chan struct{}
	// check carries every frame read to the goroutine that validates it
	// against docs/schemas, off the read loop: validating under -race is
	// slow enough that, done inline, it made the client read slowly and
	// the server drop it for not reading (or for late pongs).
	check   chan []byte
	checked chan struct{} // closed when every frame read has been validated
	mu      sync.Mutex
	err     error // why the read loop ended
	hello   frame
	gate    sync.Mutex // held while paused: the read loop stops reading
	// pending holds frames read but not yet consumed by next; only the
	// test goroutine that owns the client touches it.
	pending []frame
}

// pause stops reading from the socket (after at most one more frame), so
// that the server's writes back up; resume reads again.
func (c *wsClient) pause()  { c.gate.Lock() }
func (c *wsClient) resume() { c.gate.Unlock() }

// dial opens a socket as user and waits for its hello.
func dial(t testing.TB, url, user string) *wsClient {
	t.Helper()
	return dialWith(t, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok(t, user, time.Hour)}}})
}

func dialWith(t testing.TB, url string, opts *websocket.DialOptions) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	conn.SetReadLimit(16 << 20)
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 100000), closed: make(chan struct{}),
		check: make(chan []byte, 100000), checked: make(chan struct{})}
	go c.readLoop()
	go c.checkLoop()
	t.Cleanup(func() {
		conn.CloseNow()
		// The read and check loops report to t: let them end before t
		// does. A paused client's loop cannot end; it has nothing more to
		// report either.
		select {
		case <-c.closed:
			<-c.checked
		case <-time.After(5 * time.Second):
		}
	})
	// hello must be the very first frame, not merely the first hello.
	select {
	case c.hello = <-c.frames:
		if c.hello.typ() != "hello" {
			t.Fatalf("dial %s: first frame %v, want hello", url, c.hello)
		}
	case <-c.closed:
		t.Fatalf("dial %s: closed before hello: %v", url, c.closeErr())
	case <-time.After(10 * time.Second):
		t.Fatalf("dial %s: no hello within 10s", url)
	}
	return c
}

func (c *wsClient) readLoop() {
	defer close(c.closed)
	defer close(c.check)
	for {
		c.gate.Lock()
		c.gate.Unlock()
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("server sent invalid JSON %q: %w", data, err)
			c.mu.Unlock()
			c.conn.CloseNow()
			return
		}
		c.check <- data
		c.frames <- f
	}
}

// checkLoop validates every frame the read loop read against docs/schemas.
func (c *wsClient) checkLoop() {
	defer close(c.checked)
	for data := range c.check {
		if err := contract.ValidateServerFrame(data); err != nil {
			c.t.Errorf("the server sent a frame that does not match its schema: %v", err)
		}
	}
}

// next returns the oldest unconsumed frame of one of the given types (any
// type if none given). Frames of other types stay queued for later calls,
// so that a request's reply does not swallow events. It fails after 10s.
func (c *wsClient) next(types ...string) frame {
	c.t.Helper()
	match := func(f frame) bool {
		if len(types) == 0 {
			return true
		}
		for _, ty := range types {
			if f.typ() == ty {
				return true
			}
		}
		return false
	}
	for i, f := range c.pending {
		if match(f) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return f
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-c.frames:
			if match(f) {
				return f
			}
			c.pending = append(c.pending, f)
		case <-c.closed:
			// Frames that arrived before the close are still in the channel.
			select {
			case f := <-c.frames:
				if match(f) {
					return f
				}
				c.pending = append(c.pending, f)
				continue
			default:
			}
			c.t.Fatalf("socket closed while waiting for %v: %v", types, c.closeErr())
		case <-deadline:
			c.t.Fatalf("no %v frame within 10s", types)
		}
	}
}

// events collects n change events (task.*), failing after 20s.
func (c *wsClient) events(n int) []frame {
	c.t.Helper()
	out := make([]frame, 0, n)
	for len(out) < n {
		out = append(out, c.next("task.created", "task.updated", "task.deleted"))
	}
	return out
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// request sends a frame with id and returns the reply or error with that id.
func (c *wsClient) request(v map[string]any) frame {
	c.t.Helper()
	id := reqlog.NewID()
	v["id"] = id
	c.send(v)
	for {
		f := c.next("reply", "error", "snapshot", "synced")
		if f["id"] == id {
			return f
		}
	}
}

// waitClosed waits for the server to close the socket and returns the close code.
func (c *wsClient) waitClosed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.closed:
		return websocket.CloseStatus(c.closeErr())
	case <-time.After(20 * time.Second):
		c.t.Fatal("socket still open after 20s")
		return 0
	}
}

func (c *wsClient) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// quiet asserts that no change event arrives before a ping round trip:
// frames are delivered in order per socket, so anything queued before the
// pong would show up first.
func (c *wsClient) quiet() {
	c.t.Helper()
	id := reqlog.NewID()
	c.send(map[string]any{"type": "ping", "id": id})
	for {
		f := c.next()
		switch f.typ() {
		case "pong":
			if f["id"] == id {
				return
			}
		case "task.created", "task.updated", "task.deleted", "snapshot", "synced":
			c.t.Fatalf("unexpected frame %v", f)
		}
	}
}

var errTimeout = errors.New("timeout")

// eventually polls cond until it holds or 20s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("%s: %v", what, errTimeout)
		case <-tick.C:
		}
	}
}

// metric returns the value of an unlabelled metric scraped from /metrics.
func (i *instance) metric(t testing.TB, name string) float64 {
	t.Helper()
	res, err := http.Get(i.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func (i *instance) metricAbove(t testing.TB, name string, v float64) bool {
	t.Helper()
	return i.metric(t, name) > v
}

// presenceHas reports whether a presence frame lists session id. Joins
// that follow each other closely are folded into one "sync" frame, so
// tests look at the list, not at the event name.
func presenceHas(f frame, id any) bool {
	list, _ := f["sessions"].([]any)
	for _, e := range list {
		if m, _ := e.(map[string]any); m["session_id"] == id {
			return true
		}
	}
	return false
}
