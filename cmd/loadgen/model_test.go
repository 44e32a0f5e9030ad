package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestModelServerScript: the test model server answers a user message with
// an add_task call whose arguments arrive split, and the tool's result
// with streamed text, in the Chat Completions wire format.
func TestModelServerScript(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := serveModel(ctx, ln, 4)
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done })

	post := func(body string) []map[string]any {
		t.Helper()
		res, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var chunks []map[string]any
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var c map[string]any
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				t.Fatalf("chunk %q: %v", data, err)
			}
			chunks = append(chunks, c)
		}
		return chunks
	}
	delta := func(c map[string]any) map[string]any {
		return c["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
	}

	chunks := post(`{"model":"m","stream":true,"messages":[{"role":"user","content":"buy \"oat\" milk"}]}`)
	var args strings.Builder
	name := ""
	for _, c := range chunks {
		if calls, ok := delta(c)["tool_calls"].([]any); ok {
			fn := calls[0].(map[string]any)["function"].(map[string]any)
			if n, _ := fn["name"].(string); n != "" {
				name = n
			}
			args.WriteString(fn["arguments"].(string))
		}
	}
	var parsed struct{ Title string }
	if name != "add_task" || json.Unmarshal([]byte(args.String()), &parsed) != nil || parsed.Title != `buy "oat" milk` {
		t.Fatalf("tool call %q %q", name, args.String())
	}

	chunks = post(`{"model":"m","stream":true,"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_1","content":"{}"}]}`)
	var text strings.Builder
	pieces := 0
	for _, c := range chunks {
		if s, _ := delta(c)["content"].(string); s != "" {
			text.WriteString(s)
			pieces++
		}
	}
	if pieces < 2 || !strings.HasPrefix(text.String(), "Done:") {
		t.Fatalf("answer %q in %d pieces", text.String(), pieces)
	}
}
