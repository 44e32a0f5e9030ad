package realtime

import (
	"context"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"tasksync/internal/contract"
)

// The fake connection checks every frame a session writes against
// docs/schemas: a pong without server_time fails the test; a good one
// does not.
func TestFakeConnFailsOnAFrameThatDoesNotMatchItsSchema(t *testing.T) {
	rec := &contract.ErrorRecorder{TB: t}
	c := newFakeConn(rec)
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong","id":"p1","server_time":"2026-11-25T19:25:22.995Z"}`)); err != nil {
		t.Fatal(err)
	}
	if errs := rec.Errors(); len(errs) != 0 {
		t.Fatalf("a valid pong was reported: %q", errs)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong","id":"p2"}`)); err != nil {
		t.Fatal(err)
	}
	if errs := rec.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "docs/schemas/server/pong.json") || !strings.Contains(errs[0], "server_time") {
		t.Fatalf("errors %q, want one naming pong.json and server_time", errs)
	}
}
