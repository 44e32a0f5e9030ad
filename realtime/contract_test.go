package realtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// errorRecorder is a testing.TB whose Errorf is recorded instead of
// failing the test.
type errorRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The fake connection checks every frame a session writes against
// docs/schemas: a pong without server_time fails the test; a good one
// does not.
func TestFakeConnFailsOnAFrameThatDoesNotMatchItsSchema(t *testing.T) {
	rec := &errorRecorder{TB: t}
	c := newFakeConn(rec)
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong","id":"p1","server_time":"2026-11-25T19:25:22.995Z"}`)); err != nil {
		t.Fatal(err)
	}
	if len(rec.errs) != 0 {
		t.Fatalf("a valid pong was reported: %q", rec.errs)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong","id":"p2"}`)); err != nil {
		t.Fatal(err)
	}
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "docs/schemas/server/pong.json") || !strings.Contains(rec.errs[0], "server_time") {
		t.Fatalf("errors %q, want one naming pong.json and server_time", rec.errs)
	}
}
