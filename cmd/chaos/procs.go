package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"tasksync/internal/procstat"
)

// readyTimeout bounds the wait for a started instance to answer /readyz;
// a shared machine under load can be slow, and this is not what is measured.
const readyTimeout = 90 * time.Second

// instance is one server process, started again after each fault that
// stops it, always on the same port (so that clients find it again).
type instance struct {
	name string
	port int
	h    *harness
	env  []string // settings of this instance only, on top of the run's

	mu          sync.Mutex
	cmd         *exec.Cmd
	exited      chan struct{} // closed when the current process has exited
	expectExit  bool          // this run signalled the current process
	incarnation int
	crashes     []string // unexpected exits
	hwm         int64    // highest VmHWM over every incarnation
	log         *os.File

	// counters are the tasksync_* counters of /metrics summed over the
	// incarnations that ended; current is the last scrape of the running
	// one (read before each signal, since a killed process can no longer
	// be asked).
	counters map[string]float64
	current  map[string]float64
}

func (in *instance) wsURL() string   { return fmt.Sprintf("ws://127.0.0.1:%d/ws", in.port) }
func (in *instance) httpURL() string { return fmt.Sprintf("http://127.0.0.1:%d", in.port) }

// freePort asks the kernel for a port that is free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serverEnv is the whole environment of a server process: nothing is
// inherited but PATH and HOME, so that a DATABASE_URL in the caller's
// environment can never point an instance at a shared database.
func (h *harness) serverEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + h.dbURL,
		"REDIS_URL=" + h.cfg.RedisURL,
		"REDIS_PREFIX=chaos",
		"AUTH_JWT_SECRET=" + h.secret,
		"AUTO_MIGRATE=false",
		"LOG_LEVEL=info",
		// The crowd puts hundreds of sockets of a few users on one instance.
		"WS_MAX_SOCKETS_PER_USER=100000",
	}
	env = append(env, extra...)
	return append(env, h.cfg.ServerEnv...)
}

// serverCommand runs the server binary once (migrate, token) and returns
// its standard output.
func (h *harness) serverCommand(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cfg.Server, args...)
	cmd.Env = h.serverEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("server %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// start runs a new incarnation and waits until it answers /readyz.
func (in *instance) start(ctx context.Context) error {
	in.mu.Lock()
	if in.log == nil {
		f, err := os.OpenFile(filepath.Join(in.h.cfg.Out, "server-"+in.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			in.mu.Unlock()
			return err
		}
		in.log = f
	}
	in.incarnation++
	fmt.Fprintf(in.log, "=== chaos: start #%d of instance %s at +%.1fs ===\n", in.incarnation, in.name, in.h.since())
	cmd := exec.Command(in.h.cfg.Server, "serve")
	cmd.Env = in.h.serverEnv(append([]string{fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", in.port), "INSTANCE_ID=chaos-" + in.name}, in.env...)...)
	cmd.Stdout, cmd.Stderr = in.log, in.log
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		in.mu.Unlock()
		return fmt.Errorf("start instance %s: %w", in.name, err)
	}
	in.cmd, in.expectExit = cmd, false
	in.foldCounters()
	exited := make(chan struct{})
	in.exited = exited
	pidLine := fmt.Sprintf("%d %s\n", cmd.Process.Pid, in.h.cfg.Server)
	in.mu.Unlock()
	in.h.recordPID(pidLine)

	go func() {
		err := cmd.Wait()
		in.mu.Lock()
		if !in.expectExit {
			msg := fmt.Sprintf("instance %s (start #%d) exited on its own at +%.1fs: %v", in.name, in.incarnation, in.h.since(), err)
			in.crashes = append(in.crashes, msg)
			in.h.logf("%s", msg)
		}
		in.mu.Unlock()
		close(exited)
	}()
	return in.waitReady(ctx, exited)
}

func (in *instance) waitReady(ctx context.Context, exited chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.httpURL()+"/readyz", nil)
		if err != nil {
			return err
		}
		if res, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("instance %s exited before it was ready (see %s)", in.name, in.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s not ready within %s (see %s)", in.name, readyTimeout, in.log.Name())
		}
	}
}

// signal sends sig to the running incarnation and waits up to wait for it
// to exit; it reports how long the exit took and whether it had to be
// killed after all.
func (in *instance) signal(sig syscall.Signal, wait time.Duration) (took time.Duration, forced bool, exit string, err error) {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	if cmd == nil {
		in.mu.Unlock()
		return 0, false, "", fmt.Errorf("instance %s is not running", in.name)
	}
	in.expectExit = true
	in.mu.Unlock()
	in.sampleMemory()
	in.sampleCounters()
	start := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		return 0, false, "", fmt.Errorf("signal instance %s: %w", in.name, err)
	}
	select {
	case <-exited:
	case <-time.After(wait):
		forced = true
		_ = cmd.Process.Kill()
		<-exited
	}
	took = time.Since(start)
	exit = "exit 0"
	if st := cmd.ProcessState; st != nil && !st.Success() {
		exit = st.String()
	}
	return took, forced, exit, nil
}

// sampleMemory folds the current incarnation's VmHWM into the maximum.
func (in *instance) sampleMemory() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	select {
	case <-in.exited:
		return
	default:
	}
	if m, err := procstat.Read(in.cmd.Process.Pid); err == nil && m.HWM > in.hwm {
		in.hwm = m.HWM
	}
}

// pid is the process id of the running incarnation (0: none).
func (in *instance) pid() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil || in.cmd.Process == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

// batchCounters are the counters of /metrics that the run reports per
// instance: group commit at work, and batches rolled back.
var batchCounters = []string{"tasksync_mutations_total", "tasksync_write_transactions_total", "tasksync_batch_reruns_total"}

// sampleCounters keeps the running incarnation's batch counters; a server
// that does not answer (it is going down) keeps the last ones read.
func (in *instance) sampleCounters() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m, err := in.metrics(ctx, batchCounters...)
	if err != nil {
		return
	}
	in.mu.Lock()
	in.current = m
	in.mu.Unlock()
}

// foldCounters adds the last incarnation's counters to the sum, as a new
// one starts from zero. Called with in.mu held.
func (in *instance) foldCounters() {
	if in.counters == nil {
		in.counters = map[string]float64{}
	}
	for k, v := range in.current {
		in.counters[k] += v
	}
	in.current = nil
}

// stop ends the last incarnation at the end of the run.
func (in *instance) stop() {
	in.mu.Lock()
	running := in.cmd != nil && in.exited != nil
	in.mu.Unlock()
	if running {
		select {
		case <-in.exited:
		default:
			_, _, _, _ = in.signal(syscall.SIGTERM, 30*time.Second)
		}
	}
	in.mu.Lock()
	if in.log != nil {
		in.log.Close()
	}
	in.mu.Unlock()
}

// scanLog returns the log lines at level ERROR of every incarnation, and
// the number of data races reported (a server built with -race).
func (in *instance) scanLog() (errors []string, races int, err error) {
	f, err := os.Open(filepath.Join(in.h.cfg.Out, "server-"+in.name+".log"))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.Contains(line, "level=ERROR") || strings.Contains(line, `"level":"ERROR"`):
			errors = append(errors, line)
		case strings.HasPrefix(line, "WARNING: DATA RACE"):
			races++
		}
	}
	return errors, races, sc.Err()
}

// runHook carries out a PostgreSQL or Redis fault through the --hook
// command, which owns those processes.
func (h *harness) runHook(ctx context.Context, args ...string) error {
	if len(h.cfg.Hook) == 0 {
		return errors.New("no --hook command")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	all := append(append([]string(nil), h.cfg.Hook[1:]...), args...)
	cmd := exec.CommandContext(ctx, h.cfg.Hook[0], all...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("hook %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
