package chat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"tasksync"
	"tasksync/internal/utf8json"
	"tasksync/tasks/quickadd"
)

// Offline commands come straight from users.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"add a task to buy groceries", "show me all my tasks", "what's pending?", "mark task 3 as complete",
		"delete the meeting task", "change task 1 to 'Call mom tonight'", "set the description of task 2 to x",
		"Please ADD A TASK: İstanbul", "remove the \"old\" task", "", "\x00\xff", "task 99999999999999999999 is done",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCommand(s)
		for _, v := range []string{c.Title, c.Match, c.Status} {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				t.Fatalf("%q: invalid text %q in %+v", s, v, c)
			}
		}
		if c.Description != nil && !utf8.ValidString(*c.Description) {
			t.Fatalf("%q: invalid description", s)
		}
		if c.TaskID < 0 || (c.TaskID == 0 && c.Match == "" && (c.Action == ActionComplete || c.Action == ActionDelete)) {
			t.Fatalf("%q: %+v names no task", s, c)
		}
		switch c.Action {
		case ActionHelp, ActionList, ActionComplete, ActionDelete:
		case ActionAdd:
			if strings.TrimSpace(c.Title) == "" {
				t.Fatalf("%q: add without a title", s)
			}
		case ActionUpdate:
			if c.Title == "" && c.Description == nil {
				t.Fatalf("%q: update of nothing", s)
			}
		default:
			t.Fatalf("%q: action %q", s, c.Action)
		}
	})
}

// The REST chat body is untrusted JSON.
func FuzzDecodeChatInput(f *testing.F) {
	for _, s := range []string{`{"message":"hi"}`, `{"conversation_id":3,"message":"x"}`, `{"conversation_id":"3"}`,
		`{"message":"   "}`, `{"conversation_id":-1,"message":"a"}`, `{"conversation_id":1e3,"message":"a"}`, `{"message":"\u0000"}`,
		"{\"message\":\"bad\xff\xfe\"}", `{"message":"\ud800"}`, `{"message":"\ud83d\ude00"}`, `{"conversation_id":-0,"message":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		in, err := DecodeChatInput(raw)
		if err != nil {
			if tasksync.ErrorCode(err) != tasksync.CodeInvalid || len(tasksync.AsError(err).Fields) == 0 {
				t.Fatalf("%s: error %v", body, err)
			}
			return
		}
		if !utf8json.Valid(raw["message"]) {
			t.Fatalf("%s: accepted text that decoding altered: %q", body, in.Message)
		}
		if in.ConversationID < 0 || in.Message == "" || in.Message != strings.TrimSpace(in.Message) ||
			utf8.RuneCountInString(in.Message) > MaxMessageRunes || !utf8.ValidString(in.Message) || strings.ContainsRune(in.Message, 0) {
			t.Fatalf("%s: accepted %+v", body, in)
		}
	})
}

// Cancel signals arrive from the broker, written by other instances.
func FuzzDecodeSignal(f *testing.F) {
	f.Add([]byte(`{"kind":"chat.cancel","conversation_id":3,"turn_id":"t_abc"}`))
	f.Add([]byte(`{"kind":"chat.cancel","conversation_id":-3,"turn_id":""}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		sig, ok := decodeSignal(payload)
		if ok && (sig.Kind != signalCancel || sig.ConversationID <= 0 || sig.TurnID == "" || len(sig.TurnID) > 64) {
			t.Fatalf("%q: accepted %+v", payload, sig)
		}
	})
}

// Tool arguments come from the model (or an MCP client): decoding them
// never panics, and what is stored is JSON that Postgres jsonb accepts.
func FuzzToolArguments(f *testing.F) {
	for _, s := range []string{`{"task_id": 3}`, `{"task_id": "#4", "title": "x"}`, `"{\"task_id\": 1}"`, `{"task_id": 1e30}`,
		`{"title": "a\u0000b"}`, `{"title": "\ud800"}`, `{"ti`, ``, `null`, `[1]`, `{"status": null, "tags": null}`, "{\"t\":\"\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if args, err := decodeArguments(json.RawMessage(text)); err == nil {
			_, _ = args.taskID()
			_, _ = args.status()
			_, _ = args.fields(true)
			_, _ = args.fields(false)
		}
		stored := argumentsJSON(text)
		if !json.Valid(stored) || !utf8.Valid(stored) || !jsonbEscapesOK(stored) {
			t.Fatalf("%q stored as %s", text, stored)
		}
		if s := argumentsText(stored); !utf8.ValidString(s) {
			t.Fatalf("%q replays as %q", text, s)
		}
	})
}

// jsonbEscapesOK applies Postgres jsonb's rule on \u escapes in strings:
// no \u0000, and surrogates only as high-low pairs.
func jsonbEscapesOK(b []byte) bool {
	inString := false
	pendingHigh := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			if pendingHigh {
				return false
			}
			inString = false
		case '\\':
			i++
			if i >= len(b) {
				return false
			}
			if b[i] != 'u' {
				if pendingHigh {
					return false
				}
				continue
			}
			if i+4 >= len(b) {
				return false
			}
			var code rune
			for _, h := range b[i+1 : i+5] {
				code <<= 4
				switch {
				case h >= '0' && h <= '9':
					code |= rune(h - '0')
				case h >= 'a' && h <= 'f':
					code |= rune(h-'a') + 10
				case h >= 'A' && h <= 'F':
					code |= rune(h-'A') + 10
				}
			}
			i += 4
			switch {
			case code == 0:
				return false
			case code >= 0xD800 && code < 0xDC00:
				if pendingHigh {
					return false
				}
				pendingHigh = true
			case code >= 0xDC00 && code < 0xE000:
				if !pendingHigh {
					return false
				}
				pendingHigh = false
			default:
				if pendingHigh {
					return false
				}
			}
		default:
			if pendingHigh {
				return false
			}
		}
	}
	return true
}

func TestJSONBEscapesOK(t *testing.T) {
	for s, want := range map[string]bool{
		`{"a":"x"}`: true, `"\\u0000"`: true, `"\u0000"`: false, `"\ud83d\ude00"`: true, `"\ud83d"`: false,
		`"\ude00"`: false, `"\u00e9"`: true, `{"\u0000":1}`: false,
	} {
		if got := jsonbEscapesOK([]byte(s)); got != want {
			t.Errorf("%s: %v", s, got)
		}
	}
}

// Streamed tool-call fragments are assembled by index, whatever order
// and repetition they come in.
func FuzzToolCallAccumulator(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 2, 0}, "call_a", "add_task", `{"x":`)
	f.Fuzz(func(t *testing.T, indexes []byte, id, name, piece string) {
		var a toolCallAccumulator
		want := map[int64]string{}
		for i, ix := range indexes {
			idx := int64(ix % 4)
			callID := ""
			if i < 4 {
				callID = id + string(rune('a'+ix%4))
			}
			a.add(idx, callID, name, piece)
			want[idx] += piece
		}
		calls := a.result()
		total := 0
		for _, c := range calls {
			if c.ID == "" {
				t.Fatal("a call without an id")
			}
			total += len(c.Arguments)
		}
		if total != len(piece)*len(indexes) {
			t.Fatalf("arguments lost: %d of %d bytes", total, len(piece)*len(indexes))
		}
	})
}

// The offline assistant turns any "add ..." into add_task arguments that
// the tools decode as they are (dates are RFC 3339 the task service reads
// back to the same instant; a rule always comes with its due time).
func FuzzOfflineAddArguments(f *testing.F) {
	for _, s := range []string{
		"add buy milk tomorrow at 9 with high priority #home", "add pay rent every month on the 1st !high",
		"remind me to call mom tomorrow at 6pm", "add 'Call mom tonight'", "add x at 25:00 on the 31st of Febtember",
		"add standup every weekday at 9 remind me 10 min before", "add tomorrow", "add #a #b p1 in 99999 days",
	} {
		f.Add(s, int64(0))
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Pacific/Chatham"}
	f.Fuzz(func(t *testing.T, msg string, at int64) {
		cmd := ParseCommand(msg)
		if cmd.Action != ActionAdd {
			return
		}
		loc, _ := time.LoadLocation(zones[uint64(at)%uint64(len(zones))])
		now := time.Unix(int64(uint64(at)%(200*365*86400)), 0)
		r := quickadd.Parse(cmd.Title, now, loc)
		args, problem := addArguments(cmd, r)
		if cmd.Literal {
			r = quickadd.Result{} // a quoted title: nothing read out of it
		}
		if (args == nil) == (problem == "") {
			t.Fatalf("%q: arguments %v and problem %q", msg, args, problem)
		}
		if args == nil {
			return
		}
		b, _ := json.Marshal(args)
		a, err := decodeArguments(b)
		if err != nil {
			t.Fatalf("%q: %s: %v", msg, b, err)
		}
		fields, err := a.fields(true)
		if err != nil {
			t.Fatalf("%q: %s: %v", msg, b, err)
		}
		if (fields.DueAt == nil) != (r.DueAt == nil) || fields.DueAt != nil && !fields.DueAt.Equal(r.DueAt.Truncate(time.Second)) {
			t.Fatalf("%q: due %v, parsed %v", msg, fields.DueAt, r.DueAt)
		}
		if fields.Recurrence != nil && fields.DueAt == nil {
			t.Fatalf("%q: a rule without a due time: %s", msg, b)
		}
	})
}
