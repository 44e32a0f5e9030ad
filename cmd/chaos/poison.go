package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// poisonCase is one kind of hostile frame, sent on a socket of its own amid
// the other users' writes, with the answers that keep the promise: a
// definite refusal (or the documented close), never a stored change, never
// `internal`, and the socket still answering a ping afterwards unless it
// was closed on purpose.
type poisonCase struct {
	name string
	typ  websocket.MessageType
	// frame builds the frame; tag is unique to this sending, so that a
	// frame that was wrongly stored can be found in the database.
	frame func(tag string) []byte
	// codes are the error codes that keep the promise; closes the close
	// codes that do.
	codes  []string
	closes []string
}

// The cases. Titles carry the tag so that anything stored is found.
var poisonCases = []poisonCase{
	{name: "invalid JSON", typ: websocket.MessageText, codes: []string{"bad_request"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","task":{"title":"` + tag + `"`)
		}},
	{name: "not an object", typ: websocket.MessageText, codes: []string{"bad_request"},
		frame: func(tag string) []byte { return []byte(`["task.create","` + tag + `"]`) }},
	{name: "unknown type", typ: websocket.MessageText, codes: []string{"bad_request"},
		frame: func(tag string) []byte { return []byte(`{"type":"task.explode","id":"poison","tag":"` + tag + `"}`) }},
	{name: "NUL in mutation_id", typ: websocket.MessageText, codes: []string{"bad_request", "invalid"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","mutation_id":"nul\u0000` + tag + `","task":{"title":"` + tag + `"}}`)
		}},
	{name: "NUL in title", typ: websocket.MessageText, codes: []string{"bad_request", "invalid"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","task":{"title":"nul\u0000` + tag + `"}}`)
		}},
	// Raw bytes 0xff 0xfe: not UTF-8, in a text frame. Refusing the
	// field, or closing with 1007 (invalid payload data, RFC 6455), keeps
	// the promise; storing U+FFFD does not.
	{name: "invalid UTF-8 in title", typ: websocket.MessageText, codes: []string{"bad_request", "invalid"}, closes: []string{"1007"},
		frame: func(tag string) []byte {
			return []byte("{\"type\":\"task.create\",\"id\":\"poison\",\"task\":{\"title\":\"bad\xff\xfe " + tag + "\"}}")
		}},
	{name: "lone surrogate in title", typ: websocket.MessageText, codes: []string{"bad_request", "invalid"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","task":{"title":"\ud800 ` + tag + `"}}`)
		}},
	{name: "deep nesting", typ: websocket.MessageText, codes: []string{"bad_request", "invalid"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","task":{"title":"` + tag + `","tags":` +
				strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`)
		}},
	{name: "huge frame", typ: websocket.MessageText, closes: []string{"1009"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","task":{"title":"` + tag + `","description":"` + strings.Repeat("x", 1<<20) + `"}}`)
		}},
	{name: "binary frame", typ: websocket.MessageBinary, codes: []string{"bad_request"}, closes: []string{"1003"},
		frame: func(tag string) []byte {
			return []byte(`{"type":"task.create","id":"poison","task":{"title":"` + tag + `"}}`)
		}},
}

// poisonStats counts, per case, what the server answered.
type poisonStats struct {
	mu       sync.Mutex
	sent     map[string]int
	ok       map[string]int
	bad      map[string]map[string]int // case -> answer -> count
	unclear  map[string]int            // no answer while an instance or PostgreSQL was down
	lastTags map[string][]string
}

func (p *poisonStats) record(c *poisonCase, answer string, good, inconclusive bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent == nil {
		p.sent, p.ok, p.bad, p.unclear = map[string]int{}, map[string]int{}, map[string]map[string]int{}, map[string]int{}
	}
	p.sent[c.name]++
	switch {
	case good:
		p.ok[c.name]++
	case inconclusive:
		p.unclear[c.name]++
	default:
		if p.bad[c.name] == nil {
			p.bad[c.name] = map[string]int{}
		}
		p.bad[c.name][answer]++
	}
}

// poisonTimeout bounds the wait for the answers to one poison frame and its
// ping; the server answers every request within its own request timeout.
const poisonTimeout = 30 * time.Second

// poison sends one case after the other, each on a new socket of one of
// the poison users, until ctx ends.
func (h *harness) poison(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		c := &poisonCases[i%len(poisonCases)]
		user := h.poisonUsers[i%len(h.poisonUsers)]
		in := h.instances[i%2]
		tag := fmt.Sprintf("chaos-%s-poison-%d", h.runTag, i)
		answer, good, inconclusive := h.poisonOnce(ctx, in, user, c, tag)
		if ctx.Err() != nil {
			return
		}
		h.poisoned.record(c, answer, good, inconclusive)
		sleepCtx(ctx, h.cfg.PoisonGap)
	}
}

// poisonOnce sends one poison frame followed by a ping and classifies what
// comes back. answer describes it ("error bad_request", "close 1009",
// "reply created", ...).
func (h *harness) poisonOnce(ctx context.Context, in *instance, user string, c *poisonCase, tag string) (answer string, good, inconclusive bool) {
	conn, err := h.dial(ctx, in, user, noSince, "poison")
	if err != nil {
		return "no socket", false, true
	}
	defer conn.CloseNow()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, poisonTimeout)
	defer cancel()

	check := helloCheck{h: h, role: "poison", where: user + " on " + in.name}
	defer check.done()
	read := func() (*frame, string, error) {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return nil, closeCode(err), err
		}
		var f frame
		if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil {
			h.anomalies.add("undecodable frame from the server", 1)
			return &f, "", nil
		}
		check.see(&f)
		return &f, "", nil
	}
	// The frame goes after hello, as a client's would.
	for !check.hello {
		if _, code, err := read(); err != nil {
			return "closed before hello: " + code, false, true
		}
	}
	// A write that fails because the server closed the socket mid-frame
	// (the huge frame) is fine: the read below tells why it closed.
	if err := conn.Write(ctx, c.typ, c.frame(tag)); err == nil {
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"after-poison"}`))
	}

	// The answer to the poison and the pong may come in either order:
	// requests are served off the read loop, and replies are matched by id.
	answer = ""
	pong := false
	for {
		f, code, err := read()
		if err != nil {
			if ctx.Err() != nil && parent.Err() == nil {
				if pong {
					return "no answer within the time, only the pong", false, false
				}
				return "no answer within the time", false, false
			}
			// An instance going away (1001) or killed (1006) by a fault
			// says nothing of the poison.
			outage := code == "1001" || code == "1006"
			if answer == "" {
				answer = "close " + code
				good := slices.Contains(c.closes, code)
				return answer, good, !good && outage
			}
			// Refused as promised, then closed before the ping was answered.
			return answer + ", then close " + code, outage, false
		}
		switch f.Type {
		case "error":
			if answer != "" || f.Re == "ping" || string(f.ID) == `"after-poison"` {
				continue // e.g. rate_limited on the ping
			}
			answer = "error " + f.Code
			if f.Code == "unavailable" {
				return answer, false, true
			}
			if !slices.Contains(c.codes, f.Code) {
				return answer, false, false
			}
			if pong {
				return answer, true, false
			}
		case "reply":
			if answer == "" {
				op := ""
				if f.Task != nil {
					op = " (task stored)"
				}
				return "reply" + op, false, false
			}
		case "pong":
			pong = true
			if answer != "" {
				return answer, true, false
			}
		}
	}
}
