package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"tasksync/internal/contract"
)

// The test socket checks every server frame against docs/schemas: a server
// that sends a task event without the task's fields fails the test that
// reads it, with the frame and what is wrong; valid frames pass.
func TestWSClientFailsOnAFrameThatDoesNotMatchItsSchema(t *testing.T) {
	const (
		hello = `{"type":"hello","protocol":1,"session_id":"Q2GQ5ZT4MDX3S6KA","user_id":"alice","instance":"web-1","server_time":"2026-11-25T19:25:22.987Z","seq":0,"limits":{"max_frame_bytes":65536,"frames_per_second":20,"frame_burst":40,"max_sockets_per_user":32,"send_queue_bytes":1048576,"ping_interval_ms":25000,"max_in_flight":8}}`
		bad   = `{"type":"task.created","seq":1,"task":{"id":7,"title":"Buy milk"}}`
		pong  = `{"type":"pong","id":"p1","server_time":"2026-11-25T19:25:22.995Z"}`
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for _, f := range []string{hello, bad, pong} {
			if c.Write(r.Context(), websocket.MessageText, []byte(f)) != nil {
				return
			}
		}
		_, _, _ = c.Read(r.Context()) // until the client goes
	}))
	t.Cleanup(srv.Close)

	rec := &contract.ErrorRecorder{TB: t}
	c := dialWith(rec, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	c.next("task.created") // still delivered
	c.next("pong")
	// Frames are checked off the read loop: close, and wait until every
	// frame read has been checked.
	c.conn.CloseNow()
	<-c.closed
	<-c.checked
	errs := rec.Errors()
	if len(errs) != 1 {
		t.Fatalf("%d errors, want 1 (for the task event): %q", len(errs), errs)
	}
	for _, want := range []string{`server frame "task.created"`, "docs/schemas/server/task.created.json", "/task", "missing properties", "frame: " + bad} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("the error does not say %q:\n%s", want, errs[0])
		}
	}
}
