// Command loadgen measures tasksync over its real interfaces, on this
// machine only (it refuses any target outside loopback), in runs bounded in
// time and count. scripts/bench.sh (`make bench`) runs every scenario of
// docs/BENCHMARKS.md with it; each sub-command also runs on its own:
//
//	loadgen sockets --url ws://127.0.0.1:8080/ws --secret S [flags]
//	    drive running instances (or cmd/wsbaseline) over the socket
//	    protocol: writers, observers, idle sockets, chat turns; report
//	    acked mutations/s, ack and write-to-other-socket latency, events
//	    delivered/s, errors, disconnects and server memory per socket
//	loadgen sockets --proto centrifugo --url ws://127.0.0.1:8000/connection/websocket --secret S
//	    the same against Centrifugo, the benchmark peer (its JSON protocol:
//	    a user's sockets subscribe to the user's channel, writers publish;
//	    with --cf-publish api --cf-api-key K through its server API instead)
//	loadgen resume --proto tasksync|centrifugo --url URL --secret S [--events 1000]
//	    a socket that missed N changes comes back: time until it is current
//	    (tasksync ?since=, Centrifugo recovery)
//	loadgen storm --url-a URL --url-b URL --kill-pid PID --db URL --secret S
//	    the reconnect storm: N sockets on A, kill -9 A, all reconnect to B
//	    with since and full-jitter backoff while writes go on; time until
//	    all are current, events missed or doubled, Postgres load
//	loadgen notify --db URL [--rate 200] [--insert]
//	    raw Postgres NOTIFY -> LISTEN latency (pgx), the baseline of the
//	    cross-instance latency
//	loadgen redis --redis URL
//	    Redis PUBLISH -> SUBSCRIBE round trip latency and rate (go-redis)
//	loadgen model [--addr 127.0.0.1:18480]   a test model server (OpenAI wire format) for chat turns
//	loadgen report --dir DIR [--out FILE]
//	    read the JSON files of one bench run and print the table of figures,
//	    baselines and ratios
//
// Every sub-command takes --json FILE to write its result. `loadgen
// sockets -h` lists the flags. With LOADGEN_PPROF=127.0.0.1:6061 in the
// environment the loadgen's own process serves net/http/pprof there (to
// see whether the load generator itself is the bottleneck).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

const usage = `usage: loadgen sockets|resume|storm|notify|redis|model|report [flags]   (loadgen CMD -h for the flags)`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	if addr := os.Getenv("LOADGEN_PPROF"); addr != "" {
		if err := startPprof(addr); err != nil {
			return err
		}
	}
	switch cmd {
	case "sockets":
		return runSockets(ctx, args, stdout)
	case "notify":
		return runNotify(ctx, args, stdout)
	case "redis":
		return runRedis(ctx, args, stdout)
	case "resume":
		return runResume(ctx, args, stdout)
	case "storm":
		return runStorm(ctx, args, stdout)
	case "report":
		return runReport(args, stdout)
	case "model":
		return runModel(ctx, args, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// startPprof serves net/http/pprof for this process on a loopback address.
func startPprof(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("LOADGEN_PPROF: %w", err)
	}
	if err := checkLoopbackHost(host); err != nil {
		return fmt.Errorf("LOADGEN_PPROF: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("LOADGEN_PPROF: %w", err)
	}
	go func() { _ = http.Serve(ln, mux) }()
	fmt.Fprintf(os.Stderr, "loadgen: pprof on http://%s/debug/pprof/\n", ln.Addr())
	return nil
}

// checkLoopbackHost accepts localhost and loopback addresses only: every
// load this tool makes stays on this machine.
func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing %q: loadgen only targets loopback (127.0.0.0/8, ::1, localhost)", host)
	}
	return nil
}

// checkLoopbackURL checks the host of a ws://, http://, postgres:// or
// redis:// URL.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	if u.Host == "" {
		// postgres URLs may name a socket directory in a host parameter
		if h := u.Query().Get("host"); strings.HasPrefix(h, "/") {
			return nil
		}
		return fmt.Errorf("%q names no host", raw)
	}
	return checkLoopbackHost(u.Hostname())
}

// writeJSON writes v, indented, to path ("" writes nothing).
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
