package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// dialTimeout bounds the upgrade; the hello is awaited by each role.
const dialTimeout = 10 * time.Second

// frame is every field of a server frame that the harness reads. Every
// frame is decoded whole, in the order it arrives: nothing buffers frames
// until it finds the one it wants, which would hide ordering bugs.
type frame struct {
	Type         string          `json:"type"`
	ID           json.RawMessage `json:"id"`
	Re           string          `json:"re"`
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Seq          *int64          `json:"seq"`
	Page         *int            `json:"page"`
	More         *bool           `json:"more"`
	Task         *taskView       `json:"task"`
	TaskID       int64           `json:"task_id"`
	Tasks        []taskView      `json:"tasks"`
	Replayed     bool            `json:"replayed"`
	RetryAfterMS int64           `json:"retry_after_ms"`
}

// taskView is the part of a task that readers compare with the database.
type taskView struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Completed   bool   `json:"completed"`
	Version     int    `json:"version"`
}

// requestID reads a numeric request id; ok is false for none or a string.
func (f *frame) requestID() (int64, bool) {
	if len(f.ID) == 0 || f.ID[0] == '"' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(f.ID), 10, 64)
	return n, err == nil
}

// closeCode names how a socket ended: the close code the server sent, or
// "1006" when the connection just broke, or "ours" when this run closed it.
func closeCode(err error) string {
	if c := websocket.CloseStatus(err); c != -1 {
		return strconv.Itoa(int(c))
	}
	return "1006"
}

// counters is a set of named counts shared by many goroutines.
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counters) add(key string, n int64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[key] += n
	c.mu.Unlock()
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func (c *counters) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.m {
		n += v
	}
	return n
}

// httpClient is shared by every dial and REST call; connections of
// upgraded sockets are hijacked and never pooled.
var httpClient = &http.Client{Transport: &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 16,
}}

// noSince dials without a since parameter: the socket starts live.
const noSince = "none"

// dial opens a socket of user on in with ?since=<since> (the last seq the
// caller applied, or -1 for a full snapshot; noSince: none). device names
// the caller's role (reader, crowd, writer, poison). The token goes in the
// Authorization header, as CLI clients send it.
func (h *harness) dial(ctx context.Context, in *instance, user, since, device string) (*websocket.Conn, error) {
	u := in.wsURL() + "?device=" + device
	if since != noSince {
		u += "&since=" + since
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, res, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: httpClient,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + h.tokens[user]}},
	})
	if err != nil {
		key := "dial"
		if res != nil {
			key = "http_" + strconv.Itoa(res.StatusCode)
		}
		h.dialErrors.add(key, 1)
		return nil, fmt.Errorf("dial %s as %s: %w", in.name, user, err)
	}
	conn.SetReadLimit(64 << 20)
	h.sockets.add(device, 1)
	return conn, nil
}

// helloCheck watches the first frames of one socket: hello must be the
// first frame of every socket (docs/PROTOCOL.md).
type helloCheck struct {
	h      *harness
	role   string
	where  string // instance and user, for notes
	frames int
	hello  bool
	late   bool
	first  string // the first frame, when it was not hello
}

// done is told that the socket ended.
func (c *helloCheck) done() {
	if c.late && !c.hello {
		c.h.note("hello", "%s socket %s: ended after %d frames without hello; the first was %s", c.role, c.where, c.frames, c.first)
	}
}

// see is told each frame in arrival order.
func (c *helloCheck) see(f *frame) {
	c.frames++
	if f.Type == "hello" {
		if c.hello {
			c.h.anomalies.add("second hello on one socket", 1)
		}
		c.hello = true
		if c.late {
			c.h.note("hello", "%s socket %s: hello came as frame %d; the first was %s", c.role, c.where, c.frames, c.first)
		}
		return
	}
	if !c.hello {
		c.h.framesBeforeHello.add(c.role, 1)
		if !c.late {
			c.late = true
			c.h.helloNotFirst.add(c.role, 1)
			c.first = f.Type
			if f.Seq != nil {
				c.first += fmt.Sprintf(" seq %d", *f.Seq)
			}
		}
	}
}

// backoff is exponential with full jitter, reset after a good connection.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff() *backoff { return &backoff{min: 50 * time.Millisecond, max: 2 * time.Second} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// churnContext bounds one socket's life to about cfg.Churn (uniform in
// [churn/2, 3·churn/2]), so that sockets keep resuming under load and both
// instances keep serving clients whatever the faults moved; churned reports
// whether the bound, rather than ctx, ended it.
func (h *harness) churnContext(ctx context.Context) (context.Context, func() bool, context.CancelFunc) {
	if h.cfg.Churn <= 0 {
		sctx, cancel := context.WithCancel(ctx)
		return sctx, func() bool { return false }, cancel
	}
	d := h.cfg.Churn/2 + rand.N(h.cfg.Churn+1)
	sctx, cancel := context.WithTimeout(ctx, d)
	churned := func() bool { return ctx.Err() == nil && sctx.Err() != nil }
	return sctx, churned, cancel
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
