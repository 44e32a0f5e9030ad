package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"tasksync/internal/openaitest"
)

// runModel serves the test model server: an OpenAI-compatible Chat
// Completions endpoint speaking the real streaming wire format (the
// internal/openaitest server the chat tests use), with a scripted
// assistant: a user message gets an add_task tool call (the message as the
// title, its arguments split across chunks), the tool's result gets a
// confirmation streamed in --pieces chunks. Servers under load point
// OPENAI_BASE_URL at it, so that chat turns exercise the real openai-go
// path, tool calls and all, without a real model's latency.
func runModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18480", "loopback address to serve on (base URL http://ADDR/v1)")
	duration := fs.Duration("duration", 30*time.Minute, "stop after this long")
	pieces := fs.Int("pieces", 8, "chunks of the streamed answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("model: --addr must be a loopback address, got %q", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	fmt.Fprintf(stdout, "test model server on http://%s/v1 for at most %s\n", *addr, *duration)
	n, err := serveModel(ctx, ln, *pieces)
	fmt.Fprintf(stdout, "test model server: %d completions served\n", n)
	return err
}

// serveModel serves the scripted model on ln until ctx ends and returns
// how many completions it served.
func serveModel(ctx context.Context, ln net.Listener, pieces int) (int64, error) {
	var calls atomic.Int64
	respond := func(req openaitest.Request) *openaitest.Reply {
		n := calls.Add(1)
		last := len(req.Messages) - 1
		if last >= 0 && req.Messages[last].Role == "tool" {
			return &openaitest.Reply{Text: split("Done: I added that task to your board, where every device shows it now.", pieces)}
		}
		title := "a task"
		if last >= 0 {
			title = req.Text(last)
		}
		quoted := strconv.Quote(title)
		return &openaitest.Reply{ToolCalls: []openaitest.ToolCall{{
			ID: "call_" + strconv.FormatInt(n, 10), Name: "add_task",
			Args: []string{`{"title": `, quoted[:len(quoted)/2], quoted[len(quoted)/2:] + `}`},
		}}}
	}
	srv := &http.Server{Handler: openaitest.NewHandler(respond), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return calls.Load(), fmt.Errorf("model: %w", err)
	}
	return calls.Load(), nil
}

// split cuts s into at most n pieces at word boundaries.
func split(s string, n int) []string {
	words := strings.SplitAfter(s, " ")
	if n < 1 {
		n = 1
	}
	per := (len(words) + n - 1) / n
	var out []string
	for i := 0; i < len(words); i += per {
		out = append(out, strings.Join(words[i:min(i+per, len(words))], ""))
	}
	return out
}
