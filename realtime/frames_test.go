package realtime

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tasksync"
)

func TestDecodeFrame(t *testing.T) {
	cases := []struct {
		in       string
		wantType string
		wantID   string
		wantCode tasksync.Code // "" = no error
	}{
		{`{"type":"ping","id":"a1"}`, "ping", `"a1"`, ""},
		{`{"type":"ping","id":7}`, "ping", `7`, ""},
		{`{"type":"task.create","id":1,"mutation_id":"m","task":{"title":"x"}}`, "task.create", `1`, ""},
		{`{"type":"ping","id":{"nested":1}}`, "ping", ``, tasksync.CodeBadRequest},
		{`{"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`, "ping", ``, tasksync.CodeBadRequest},
		{`{"id":"no-type"}`, "", `"no-type"`, tasksync.CodeBadRequest},
		{`{"type":"task.update","id":"u","task_id":"five"}`, "", `"u"`, tasksync.CodeInvalid},
		{`[1,2]`, "", ``, tasksync.CodeBadRequest},
		{`{"type":`, "", ``, tasksync.CodeBadRequest},
		{`"ping"`, "", ``, tasksync.CodeBadRequest},
	}
	for _, c := range cases {
		f, err := decodeFrame([]byte(c.in))
		if c.wantCode == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.in, err)
				continue
			}
		} else if got := tasksync.ErrorCode(err); got != c.wantCode {
			t.Errorf("%s: code %q, want %q (err %v)", c.in, got, c.wantCode, err)
		}
		if f.Type != c.wantType && c.wantCode == "" {
			t.Errorf("%s: type %q, want %q", c.in, f.Type, c.wantType)
		}
		if string(f.ID) != c.wantID {
			t.Errorf("%s: id %s, want %s", c.in, f.ID, c.wantID)
		}
	}
}

func TestFilterValues(t *testing.T) {
	v, err := filterValues(json.RawMessage(`{"status":"pending","tag":["a","b"],"limit":5,"x":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("status") != "pending" || len(v["tag"]) != 2 || v.Get("limit") != "5" || v.Get("x") != "true" {
		t.Fatalf("values: %v", v)
	}
	for _, bad := range []string{`[1]`, `{"tag":{"a":1}}`, `{"tag":[["a"]]}`} {
		if _, err := filterValues(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestEventFrame(t *testing.T) {
	ev := &Event{UserID: "u", Seq: 7, Op: "updated", TaskID: 3, Task: json.RawMessage(`{"id" : 3, "title" : "x"}`)}
	if got, want := string(ev.Frame()), `{"type":"task.updated","seq":7,"task":{"id":3,"title":"x"}}`; got != want {
		t.Fatalf("frame %s, want %s", got, want)
	}
	del := &Event{UserID: "u", Seq: 8, Op: "deleted", TaskID: 3}
	if got, want := string(del.Frame()), `{"type":"task.deleted","seq":8,"task_id":3}`; got != want {
		t.Fatalf("frame %s, want %s", got, want)
	}
}

func TestCompactJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"id" : 3, "title" : "a, b : c", "tags" : ["x", "y"], "d" : null}`, `{"id":3,"title":"a, b : c","tags":["x","y"],"d":null}`},
		{"{\"q\": \"say \\\"hi\\\" \\\\\", \"n\": [ 1 ,\t2\n]}", `{"q":"say \"hi\" \\","n":[1,2]}`},
		{`{"emoji": "\ud83d\ude00 ü"}`, `{"emoji":"\ud83d\ude00 ü"}`},
		{` {} `, `{}`},
	} {
		if got, err := appendCompactJSON(nil, []byte(c.in)); err != nil || string(got) != c.want {
			t.Errorf("appendCompactJSON(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	// What a truncated or corrupted row looks like is refused, not sent.
	for _, bad := range []string{``, `  `, `{"title": "cut off`, `{"a": [1, 2}`, `{"a": 1}}`, `]`, `{"a": "\"}`, `{} {}`, `1`, `"x"`, `{"a": 1} 2`} {
		if got, err := appendCompactJSON(nil, []byte(bad)); err == nil {
			t.Errorf("appendCompactJSON(%q) = %s, want an error", bad, got)
		}
	}
}

// FuzzCompactJSON: on a valid JSON object or array, appendCompactJSON
// gives exactly what json.Compact gives; on anything, it does not panic.
func FuzzCompactJSON(f *testing.F) {
	f.Add([]byte(benchTaskJSON))
	f.Add([]byte(`{"a" : ["x\"y", {"b" : null}], "c" : "\\"}`))
	f.Add([]byte(`{"t": "tab\there", "u": "\u00e9"}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := appendCompactJSON([]byte("prefix"), src)
		if v := bytes.TrimLeft(src, " \t\r\n"); json.Valid(src) && (v[0] == '{' || v[0] == '[') {
			var want bytes.Buffer
			if cerr := json.Compact(&want, src); cerr != nil {
				t.Fatalf("json.Compact refused valid %q: %v", src, cerr)
			}
			if err != nil || string(got) != "prefix"+want.String() {
				t.Fatalf("appendCompactJSON(%q) = %q, %v; json.Compact gives %q", src, got, err, want.Bytes())
			}
		}
	})
}

// FuzzDecodeFrame: any bytes a client can send are either a frame with a
// type and a sane id, or a safe client error; nothing panics.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":"1"}`,
		`{"type":"task.create","id":2,"mutation_id":"m1","task":{"title":"Buy milk","tags":["home"],"due_date":"2026-12-01"}}`,
		`{"type":"task.update","id":"u","task_id":5,"base_version":3,"task":{"completed":true}}`,
		`{"type":"task.list","id":3,"filter":{"status":"pending","tag":["a","b"],"limit":10}}`,
		`{"type":"sync","id":"s","since":42}`,
		`{"type":"auth.refresh","id":"r","token":"eyJ..."}`,
		`{"type":"chat.send","id":"c","conversation_id":1,"message":"add a task"}`,
		`{"type":"ping","id":null}`, `{}`, `[]`, `null`, `{"type":1}`, `{"type":"x","since":"1"}`,
		"\x00\xff", `{"type":"ping","id":-1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			code := tasksync.ErrorCode(err)
			if code != tasksync.CodeBadRequest && code != tasksync.CodeInvalid {
				t.Fatalf("error code %q for %q", code, data)
			}
		} else if fr.Type == "" || len(fr.Type) > maxFrameType {
			t.Fatalf("accepted frame with type %q", fr.Type)
		}
		if fr.ID != nil && !validID(fr.ID) {
			t.Fatalf("invalid id %q kept", fr.ID)
		}
		if err == nil && fr.Filter != nil {
			_, _ = filterValues(fr.Filter)
		}
		// An error frame built from anything decoded is valid JSON.
		if !json.Valid(encodeError(fr.ID, fr.Type, err)) {
			t.Fatalf("error frame is not JSON for %q", data)
		}
	})
}

func TestCountOutReadsTheFrameType(t *testing.T) {
	m := NewMetrics(nil)
	m.countOut([]byte(`{"type":"task.created","seq":1}`))
	m.countOut((&Event{Seq: 2, Op: "deleted", TaskID: 1}).Frame())
	m.countOut(encode(pongFrame{Type: TypePong}))
	m.countOut([]byte(`{"type":"made.up"}`))
	m.countOut([]byte(`garbage`))
	for ty, want := range map[string]float64{"task.created": 1, "task.deleted": 1, "pong": 1, "other": 2} {
		if got := testutil.ToFloat64(m.framesOut.WithLabelValues(ty)); got != want {
			t.Errorf("%s: %v, want %v", ty, got, want)
		}
	}
}

func TestParseSeq(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "5": 5, "-1": -1, "9223372036854775807": 1<<63 - 1} {
		if got, ok := parseSeq(s); !ok || got != want {
			t.Errorf("parseSeq(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "+5", "05", " 5", "5 ", "1e0", "-0", "--1", "-", "0x10", "99999999999999999999"} {
		if _, ok := parseSeq(s); ok {
			t.Errorf("parseSeq(%q) accepted", s)
		}
	}
}
