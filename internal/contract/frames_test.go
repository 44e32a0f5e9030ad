package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tasksync/chat"
	"tasksync/docs"
	"tasksync/realtime"
)

// protocolExamples returns every JSON value of the ```json blocks of
// docs/PROTOCOL.md that is a socket frame (an object whose type has a
// schema), with its direction. REST bodies in the same file are skipped.
func protocolExamples(t *testing.T) (frames []example) {
	t.Helper()
	md, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(md, -1)
	if len(blocks) < 20 {
		t.Fatalf("found %d json blocks in docs/PROTOCOL.md", len(blocks))
	}
	schemas := mustSchemas(t)
	for _, b := range blocks {
		dec := json.NewDecoder(bytes.NewReader(b[1]))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("docs/PROTOCOL.md: a json block does not parse: %v\n%s", err, b[1])
			}
			obj, ok := v.(map[string]any)
			if !ok {
				continue
			}
			typ, _ := obj["type"].(string)
			for _, dir := range []Direction{Server, Client} {
				if schemas[dir][typ] != nil {
					frame, _ := json.Marshal(expandPlaceholders(obj))
					frames = append(frames, example{dir, typ, frame})
				}
			}
		}
	}
	return frames
}

type example struct {
	dir   Direction
	typ   string
	frame []byte
}

// sampleTask fills the tasks that PROTOCOL.md abbreviates as
// {"id":7,"...":"..."}.
var sampleTask = map[string]any{
	"id": 7, "user_id": "alice", "title": "Buy milk", "description": "", "completed": false, "priority": "medium",
	"tags": []any{"home"}, "due_date": nil, "due_at": nil, "remind_at": nil, "recurrence": nil, "tz": nil, "series_id": nil, "created_at": "2026-11-25T19:25:40.577141Z",
	"updated_at": "2026-11-25T19:25:40.577141Z", "version": 1,
}

// samples replace the string values PROTOCOL.md abbreviates as "...".
var samples = map[string]any{"session_id": "Q2GQ5ZT4MDX3S6KA", "connected_at": "2026-11-25T19:25:21.949Z"}

func expandPlaceholders(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		if _, ok := v["..."]; ok {
			for k, x := range sampleTask {
				out[k] = x
			}
		}
		for k, x := range v {
			if k == "..." {
				continue
			}
			if x == "..." {
				x = samples[k]
			}
			out[k] = expandPlaceholders(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = expandPlaceholders(x)
		}
		return out
	}
	return v
}

func mustSchemas(t testing.TB) frameSchemas {
	t.Helper()
	s, err := loadFrameSchemas()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every frame shown in docs/PROTOCOL.md matches its schema, and every
// frame type appears there at least once.
func TestProtocolExamplesMatchTheSchemas(t *testing.T) {
	examples := protocolExamples(t)
	seen := map[Direction]map[string]bool{Server: {}, Client: {}}
	for _, ex := range examples {
		seen[ex.dir][ex.typ] = true
		if err := ValidateFrame(ex.dir, ex.frame); err != nil {
			t.Error(err)
		}
	}
	for dir, byType := range mustSchemas(t) {
		for typ := range byType {
			if !seen[dir][typ] {
				t.Errorf("docs/PROTOCOL.md has no example of the %s frame %q", dir, typ)
			}
		}
	}
	t.Logf("%d examples", len(examples))
}

func TestBrokenFramesFail(t *testing.T) {
	task := `{"id":7,"user_id":"alice","title":"Buy milk","description":"","completed":false,"priority":"medium","tags":[],"due_date":null,"due_at":null,"remind_at":null,"recurrence":null,"tz":null,"series_id":null,"created_at":"2026-11-25T19:25:40.577141Z","updated_at":"2026-11-25T19:25:40.577141Z","version":1}`
	for _, tc := range []struct {
		dir   Direction
		frame string
		want  string // in the error
	}{
		{Server, `not json`, "not one JSON value"},
		{Server, `[1]`, "not a JSON object"},
		{Server, `{"seq":1}`, `no server frame has type ""`},
		{Server, `{"type":"task.create","task":{"title":"x"}}`, `no server frame has type "task.create"`},
		{Server, `{"type":"task.created","seq":1,"task":{"id":7}}`, "missing properties"},
		{Server, `{"type":"task.created","seq":0,"task":` + task + `}`, "/seq"},
		{Server, `{"type":"task.created","seq":1,"extra":true,"task":` + task + `}`, "additional properties 'extra'"},
		{Server, `{"type":"task.updated","seq":2,"task":` + strings.Replace(task, `"medium"`, `"urgent"`, 1) + `}`, "/task/priority"},
		{Server, `{"type":"task.updated","seq":2,"task":` + strings.Replace(task, `19:25:40.577141Z"`, `19:25:40.5Z"`, 1) + `}`, "/task/created_at"},
		{Server, `{"type":"hello","protocol":2,"session_id":"S","user_id":"u","instance":"i","server_time":"2026-11-25T19:25:22.987Z","seq":0,"limits":{"max_frame_bytes":1,"frames_per_second":1,"frame_burst":1,"max_sockets_per_user":1,"send_queue_bytes":1,"ping_interval_ms":1,"max_in_flight":1}}`, "/protocol"},
		{Server, `{"type":"pong","server_time":"yesterday"}`, "/server_time"},
		{Server, `{"type":"error","code":"oops","message":"m"}`, "/code"},
		{Server, `{"type":"error","code":"version_mismatch","message":"m"}`, "task"},
		{Server, `{"type":"error","code":"invalid","message":"m"}`, "fields"},
		{Server, `{"type":"reply","id":1,"re":"task.create","op":"created","task_id":7}`, "task"},
		{Server, `{"type":"reply","id":1,"re":"task.delete","op":"deleted","task_id":7,"task":` + task + `}`, "oneOf"},
		{Server, `{"type":"reply","id":1,"re":"chat.cancel","conversation_id":1,"status":"stopped"}`, "oneOf"},
		{Server, `{"type":"snapshot","seq":1,"page":0,"tasks":[],"more":false}`, "reason"},
		{Server, `{"type":"snapshot","seq":1,"page":1,"reason":"r","tasks":[],"more":false}`, "not"},
		{Server, `{"type":"presence","event":"join","online":1,"sessions":[]}`, "session_id"},
		{Server, `{"type":"presence","event":"sync","online":0,"sessions":null}`, "/sessions"},
		{Server, `{"type":"reminder","reminder_id":"0","task":` + task + `,"remind_at":"2026-11-25T19:25:40.577141Z","pending":false}`, "/reminder_id"},
		{Server, `{"type":"reminder","reminder_id":"1","task":` + task + `,"remind_at":"2026-11-25T19:25:40.577141Z"}`, "pending"},
		{Server, `{"type":"chat.done","conversation_id":1,"turn_id":"t_aaaaaaaaaaaaaaaa","message_id":2,"status":"error","text":"","tool_calls":[]}`, "/status"},
		{Server, `{"type":"chat.delta","conversation_id":1,"turn_id":"turn1","text":"x"}`, "/turn_id"},
		{Client, `{"type":"task.create","task":{"description":"no title"}}`, "title"},
		{Client, `{"type":"task.create","task":{"title":"   "}}`, "/task/title"},
		{Client, `{"type":"task.create","task":{"title":"x","colour":"red"}}`, "colour"},
		{Client, `{"type":"task.create","mutation_id":"has space","task":{"title":"x"}}`, "/mutation_id"},
		{Client, `{"type":"task.create","id":{"a":1},"task":{"title":"x"}}`, "/id"},
		{Client, `{"type":"task.create","id":"` + strings.Repeat("x", 65) + `","task":{"title":"x"}}`, "/id"},
		{Client, `{"type":"task.update","task":{"title":"x"}}`, "task_id"},
		{Client, `{"type":"task.update","task_id":7,"task":{"due_date":"tomorrow"}}`, "/task/due_date"},
		{Client, `{"type":"task.update","task_id":7,"task":{"tags":["` + strings.Repeat("t", 51) + `"]}}`, "/task/tags/0"},
		{Client, `{"type":"task.complete","task_id":"7"}`, "/task_id"},
		{Client, `{"type":"task.list","filter":{"status":"done"}}`, "/filter"},
		{Client, `{"type":"task.list","filter":{"limit":501}}`, "/filter"},
		{Client, `{"type":"sync"}`, "since"},
		{Client, `{"type":"auth.refresh","token":""}`, "/token"},
		{Client, `{"type":"chat.send","message":"` + strings.Repeat("m", 4001) + `"}`, "/message"},
		{Client, `{"type":"chat.cancel"}`, "conversation_id"},
		{Client, `{"type":"hello"}`, `no client frame has type "hello"`},
	} {
		err := ValidateFrame(tc.dir, []byte(tc.frame))
		var fe *FrameError
		switch {
		case err == nil:
			t.Errorf("%s frame %s: valid, want an error mentioning %q", tc.dir, tc.frame, tc.want)
		case !errors.As(err, &fe):
			t.Errorf("%s frame %s: %T %v, want a *FrameError", tc.dir, tc.frame, err, err)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s frame %s: error does not mention %q:\n%v", tc.dir, tc.frame, tc.want, err)
		case !strings.Contains(err.Error(), "frame: "+tc.frame[:min(len(tc.frame), 100)]):
			t.Errorf("error does not show the frame:\n%v", err)
		}
	}
}

// Every frame type the Go code names has a schema, and every schema names
// a frame type the Go code sends or reads; the union schemas list them all;
// the AsyncAPI document refers to every one.
func TestSchemasCoverTheProtocol(t *testing.T) {
	schemas := mustSchemas(t)
	goTypes := map[Direction][]string{
		Client: {realtime.TypePing, realtime.TypeTaskCreate, realtime.TypeTaskUpdate, realtime.TypeTaskDone,
			realtime.TypeTaskDelete, realtime.TypeTaskList, realtime.TypeTaskHistory, realtime.TypeTaskRestore, realtime.TypeSync, realtime.TypeAuthRefresh,
			realtime.TypePresence, realtime.TypeChatSend, realtime.TypeChatCancel},
		Server: {realtime.TypeHello, realtime.TypePong, realtime.TypeReply, realtime.TypeError, realtime.TypeTaskCreated,
			realtime.TypeTaskUpdated, realtime.TypeTaskDeleted, realtime.TypeSnapshot, realtime.TypeSynced,
			realtime.TypePresenceInfo, realtime.TypeReminder, chat.TypeStarted, chat.TypeDelta, chat.TypeToolCall, chat.TypeToolResult,
			chat.TypeDone, chat.TypeError},
	}
	asyncapi := string(docs.AsyncAPI())
	for dir, types := range goTypes {
		var have []string
		for typ := range schemas[dir] {
			have = append(have, typ)
		}
		slices.Sort(have)
		slices.Sort(types)
		if !slices.Equal(have, types) {
			t.Errorf("%s frame schemas %v, Go frame types %v", dir, have, types)
		}
		union, err := fs.ReadFile(docs.Schemas(), string(dir)+"-frame.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range types {
			file := string(dir) + "/" + typ + ".json"
			if !strings.Contains(string(union), `"$ref": "`+file+`"`) {
				t.Errorf("%s-frame.json does not list %s", dir, file)
			}
			if !strings.Contains(asyncapi, `$ref: "./schemas/`+file+`"`) {
				t.Errorf("asyncapi.yaml does not refer to %s", file)
			}
			b, _ := fs.ReadFile(docs.Schemas(), file)
			var s struct {
				Schema     string `json:"$schema"`
				Title      string `json:"title"`
				Properties struct {
					Type struct {
						Const string `json:"const"`
					} `json:"type"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.Title == "" {
				t.Errorf("%s: $schema %q, title %q", file, s.Schema, s.Title)
			}
			if typ != "reply" && s.Properties.Type.Const != typ {
				t.Errorf("%s: type const %q", file, s.Properties.Type.Const)
			}
		}
	}
}

// A broken schema is reported as such, not as a frame error.
func TestSchemasThatDoNotCompileAreReported(t *testing.T) {
	_, err := compileFrameSchemas(fsMap{"server/x.json": `{"$ref":"missing.json"}`})
	if err == nil {
		t.Fatal("a schema with a dangling $ref compiled")
	}
}

// fsMap is an fs.FS of a few files.
type fsMap map[string]string

func (m fsMap) Open(name string) (fs.File, error) {
	return fstestMap(m).Open(name)
}
