package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The scenarios' detectors, fed scripted frames with known defects.

func seeFrames(t *testing.T, c *orderCheck, frames ...string) {
	t.Helper()
	for _, s := range frames {
		var f frame
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Fatal(err)
		}
		c.see(&f)
	}
}

func TestOrderCheck(t *testing.T) {
	for _, c := range []struct {
		name   string
		since  int64
		frames []string
		final  int64
		want   string // verdict kind
	}{
		{"in order", -1, []string{`{"type":"hello","seq":5}`, `{"type":"presence"}`, `{"type":"task.created","seq":6}`, `{"type":"task.updated","seq":7}`}, 7, ""},
		{"since replays first", 2, []string{`{"type":"hello","seq":5}`, `{"type":"task.created","seq":3}`, `{"type":"task.created","seq":4}`, `{"type":"task.created","seq":5}`, `{"type":"synced","seq":5}`, `{"type":"task.created","seq":6}`}, 6, ""},
		{"event before hello", -1, []string{`{"type":"task.created","seq":6}`, `{"type":"hello","seq":6}`, `{"type":"task.created","seq":7}`}, 7, "hello"},
		{"presence before hello", -1, []string{`{"type":"presence"}`, `{"type":"hello","seq":6}`}, 6, "hello"},
		{"two hellos", -1, []string{`{"type":"hello","seq":6}`, `{"type":"hello","seq":6}`}, 6, "order"},
		{"live before the replay", 2, []string{`{"type":"hello","seq":5}`, `{"type":"task.created","seq":6}`, `{"type":"task.created","seq":3}`}, 6, "order"},
		{"gap", -1, []string{`{"type":"hello","seq":5}`, `{"type":"task.created","seq":7}`}, 7, "order"},
		{"duplicate", -1, []string{`{"type":"hello","seq":5}`, `{"type":"task.created","seq":6}`, `{"type":"task.created","seq":6}`}, 6, "order"},
		{"snapshot", 2, []string{`{"type":"hello","seq":5}`, `{"type":"snapshot","seq":5,"tasks":[]}`}, 5, "order"},
		{"short", -1, []string{`{"type":"hello","seq":5}`, `{"type":"task.created","seq":6}`}, 8, "incomplete"},
		{"nothing", -1, nil, 8, "incomplete"},
	} {
		oc := &orderCheck{since: c.since}
		seeFrames(t, oc, c.frames...)
		if v := oc.verdict(c.final); v.kind != c.want {
			t.Errorf("%s: verdict %q (%s), want %q", c.name, v.kind, v.text, c.want)
		}
		// Nothing to wait for once the order is broken or the socket is
		// at the last seq; a short socket still open is waited for.
		if got, want := oc.settled(c.final), c.want != "incomplete"; got != want {
			t.Errorf("%s: settled %v, want %v", c.name, got, want)
		}
	}
}

func TestCollectSnapshot(t *testing.T) {
	page := func(id string, page int, more bool, ids ...int) string {
		var tasks []string
		for _, i := range ids {
			tasks = append(tasks, `{"id":`+strconv.Itoa(i)+`,"title":"t","version":1}`)
		}
		return `{"type":"snapshot","id":"` + id + `","seq":9,"page":` + strconv.Itoa(page) + `,"more":` + map[bool]string{true: "true", false: "false"}[more] + `,"tasks":[` + strings.Join(tasks, ",") + `]}`
	}
	want := map[int64]taskView{1: {ID: 1, Title: "t", Version: 1}, 2: {ID: 2, Title: "t", Version: 1}, 3: {ID: 3, Title: "t", Version: 1}}
	for _, c := range []struct {
		name     string
		frames   []string
		wantCode string
		wantErr  bool
		diff     bool
	}{
		{"pages of old snapshots are skipped", []string{`{"type":"hello","seq":9}`, page("flood-1", 0, true, 1), page("final", 0, true, 1, 2), `{"type":"pong"}`, page("final", 1, false, 3)}, "", false, false},
		{"a missing task", []string{`{"type":"hello","seq":9}`, page("final", 0, false, 1, 2)}, "", false, true},
		{"a task twice", []string{`{"type":"hello","seq":9}`, page("final", 0, true, 1, 2), page("final", 1, false, 2, 3)}, "", false, true},
		{"a page skipped", []string{`{"type":"hello","seq":9}`, page("final", 0, true, 1), page("final", 2, false, 2, 3)}, "", true, false},
		{"hello not first", []string{page("final", 0, false, 1, 2, 3)}, "hello", true, false},
		{"closed before the end", []string{`{"type":"hello","seq":9}`, page("final", 0, true, 1)}, "1000", true, false},
	} {
		conn := scriptedSocket(t, c.frames...)
		got, code, err := collectSnapshot(context.Background(), conn, "final", nil)
		if (err != nil) != c.wantErr || code != c.wantCode {
			t.Errorf("%s: code %q, err %v; want code %q, error %v", c.name, code, err, c.wantCode, c.wantErr)
			continue
		}
		if err == nil && (diffTasks(got, want) != "") != c.diff {
			t.Errorf("%s: diff %q", c.name, diffTasks(got, want))
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 23
# TYPE tasksync_batch_reruns_total counter
tasksync_batch_reruns_total 0
# TYPE tasksync_socket_closes_total counter
tasksync_socket_closes_total{code="1001"} 3
tasksync_socket_closes_total{code="4008"} 2
`
	m, err := parseMetrics(strings.NewReader(text), "go_goroutines", "tasksync_batch_reruns_total", "tasksync_socket_closes_total", "tasksync_absent_total")
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 23 || m["tasksync_socket_closes_total"] != 5 {
		t.Errorf("metrics: %v", m)
	}
	if v, ok := m["tasksync_batch_reruns_total"]; !ok || v != 0 {
		t.Errorf("a counter at 0 must be present: %v", m)
	}
	if _, ok := m["tasksync_absent_total"]; ok {
		t.Errorf("a metric the server does not expose must be absent: %v", m)
	}
}

// A server that never answers a slow body is reported as still open; one
// that answers and closes, as closed, with its status line.
func TestSlowPostVerdicts(t *testing.T) {
	serve := func(answer bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					br := bufio.NewReader(c)
					for { // the head, up to its blank line
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if answer {
						_, _ = c.Write([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
						return
					}
					_, _ = io.Copy(io.Discard, br) // the body, byte by byte, forever
				}()
			}
		}()
		return ln.Addr().String()
	}
	status, closed, err := slowPost(context.Background(), serve(true), "/api/u/tasks", "", 20*time.Millisecond, 5*time.Second)
	if err != nil || !closed || !strings.HasPrefix(status, "HTTP/1.1 401") {
		t.Errorf("answering server: %q closed=%v %v", status, closed, err)
	}
	status, closed, err = slowPost(context.Background(), serve(false), "/api/u/tasks", "tok", 20*time.Millisecond, 300*time.Millisecond)
	if err != nil || closed || status != "" {
		t.Errorf("silent server: %q closed=%v %v", status, closed, err)
	}
}

func TestParseScenarioFlags(t *testing.T) {
	base := []string{"--server", "s", "--database-admin-url", "postgres://postgres@127.0.0.1:1/postgres", "--redis-url", "redis://127.0.0.1:2/0", "--hook", "h _hook"}
	c, err := parseFlags(append(base, "--quick"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Scenarios) != len(allScenarios) || c.Sizes.FloodTasks != 5000 || c.Sizes.BodyTimeout != 3*time.Second || !c.FaultRun {
		t.Errorf("quick scenario defaults: %+v", c)
	}
	c, err = parseFlags(append(base, "--scenarios", "locked-table,slow-bodies", "--fault-run=false"), nil)
	if err != nil || strings.Join(c.Scenarios, " ") != "locked-table slow-bodies" || c.FaultRun || len(c.Faults) != 0 {
		t.Errorf("--scenarios locked-table,slow-bodies --fault-run=false: %+v %v", c, err)
	}
	if c.Sizes.FloodTasks != 20000 || c.Sizes.BodyTimeout != 0 {
		t.Errorf("full scenario defaults: %+v", c.Sizes)
	}
	noHook := []string{"--server", "s", "--database-admin-url", "postgres://postgres@127.0.0.1:1/postgres", "--redis-url", "redis://127.0.0.1:2/0", "--faults", "none"}
	for _, bad := range [][]string{
		append(base, "--scenarios", "meteor"),
		append(base, "--scenarios", "none", "--fault-run=false"),
		noHook, // hello-first kills Redis through the hook
	} {
		if _, err := parseFlags(bad, nil); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	if _, err := parseFlags(append(noHook, "--scenarios", "snapshot-flood"), nil); err != nil {
		t.Errorf("snapshot-flood needs no hook: %v", err)
	}
}
