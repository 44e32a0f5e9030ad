// Command wsbaseline is the bare coder/websocket broadcast server that
// docs/BENCHMARKS.md measures tasksync against: the same library, the same
// socket pattern (a reader per socket, one writer goroutine per socket fed
// by a bounded queue, a write timeout, slow consumers closed), and frames
// of the same shapes and sizes as tasksync's, but no authentication, no
// database, no presence and no change log.
//
// It speaks just enough of docs/PROTOCOL.md for cmd/loadgen to drive it
// with the very same client code: a hello frame on connect; task.create
// answered with a reply and broadcast, as a task.created event built and
// encoded once, to every socket of the same user. The user is the token's
// sub claim, read without verification (or ?user=).
//
//	wsbaseline --addr 127.0.0.1:18200
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wsbaseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wsbaseline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18200", "listen address (loopback only)")
	queue := fs.Int("queue", 16, "frames queued per socket before it is closed as a slow consumer (16, as in coder/websocket's chat example)")
	writeTimeout := fs.Duration("write-timeout", 10*time.Second, "per write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("refusing to listen on %q: loopback only", *addr)
	}
	b := &broadcaster{groups: map[string]map[*sub]struct{}{}, queue: *queue, writeTimeout: *writeTimeout, instance: "bare-" + *addr}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("wsbaseline: listening on %s (pid %d)", ln.Addr(), os.Getpid())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type broadcaster struct {
	mu           sync.RWMutex
	groups       map[string]map[*sub]struct{}
	queue        int
	writeTimeout time.Duration
	instance     string
	seq          atomic.Int64
	sessions     atomic.Int64
}

// sub is one socket: its handler goroutine reads, its writer goroutine
// owns every write.
type sub struct {
	conn      *websocket.Conn
	msgs      chan []byte
	closeOnce sync.Once
}

func (s *sub) closeSlow() {
	s.closeOnce.Do(func() {
		go s.conn.Close(websocket.StatusPolicyViolation, "slow consumer")
	})
}

// userOf reads the sub claim of the bearer token without verifying it:
// this server has nothing to protect.
func userOf(r *http.Request) string {
	if u := r.URL.Query().Get("user"); u != "" {
		return u
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "anonymous"
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "anonymous"
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "anonymous"
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Sub == "" {
		return "anonymous"
	}
	return c.Sub
}

func (b *broadcaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		http.NotFound(w, r)
		return
	}
	user := userOf(r)
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(64 << 10)
	s := &sub{conn: conn, msgs: make(chan []byte, b.queue)}
	id := b.sessions.Add(1)
	hello, _ := json.Marshal(helloFrame{Type: "hello", Protocol: 1, SessionID: fmt.Sprintf("S%d", id), UserID: user, Instance: b.instance})
	s.msgs <- hello

	b.mu.Lock()
	g := b.groups[user]
	if g == nil {
		g = map[*sub]struct{}{}
		b.groups[user] = g
	}
	g[s] = struct{}{}
	b.mu.Unlock()

	ctx, cancel := context.WithCancel(r.Context())
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer cancel()
		for {
			select {
			case m := <-s.msgs:
				wctx, wcancel := context.WithTimeout(ctx, b.writeTimeout)
				err := conn.Write(wctx, websocket.MessageText, m)
				wcancel()
				if err != nil {
					conn.CloseNow()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		b.mu.Lock()
		delete(g, s)
		if len(g) == 0 {
			delete(b.groups, user)
		}
		b.mu.Unlock()
		cancel()
		<-writerDone
		conn.CloseNow()
	}()

	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		b.handle(s, user, data)
	}
}

// Server frames start with their type, as tasksync's do (clients may read
// the type from the prefix).
type helloFrame struct {
	Type      string `json:"type"`
	Protocol  int    `json:"protocol"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	Instance  string `json:"instance"`
	Seq       int64  `json:"seq"`
}

type errorFrame struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id,omitempty"`
	Re      string          `json:"re,omitempty"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

type inFrame struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
	Task struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"task"`
}

// task has the fields, in the order, of tasksync's task JSON, so that
// events and replies have the same sizes.
type task struct {
	ID          int64      `json:"id"`
	UserID      string     `json:"user_id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Completed   bool       `json:"completed"`
	Priority    string     `json:"priority"`
	Tags        []string   `json:"tags"`
	DueDate     *time.Time `json:"due_date"`
	CreatedAt   string     `json:"created_at"`
	UpdatedAt   string     `json:"updated_at"`
	Version     int        `json:"version"`
}

type eventFrame struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq"`
	Task *task  `json:"task"`
}

type replyFrame struct {
	Type   string          `json:"type"`
	ID     json.RawMessage `json:"id,omitempty"`
	Re     string          `json:"re"`
	Op     string          `json:"op"`
	Task   *task           `json:"task"`
	TaskID int64           `json:"task_id"`
}

func (b *broadcaster) handle(s *sub, user string, data []byte) {
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil || f.Type != "task.create" {
		msg, _ := json.Marshal(errorFrame{Type: "error", ID: f.ID, Re: f.Type, Code: "bad_request", Message: "wsbaseline only knows task.create"})
		b.enqueue(s, msg)
		return
	}
	seq := b.seq.Add(1)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	t := &task{ID: seq, UserID: user, Title: f.Task.Title, Description: f.Task.Description, Priority: "medium",
		Tags: []string{}, CreatedAt: now, UpdatedAt: now, Version: 1}
	// Encoded once for every socket, as tasksync does.
	event, _ := json.Marshal(eventFrame{Type: "task.created", Seq: seq, Task: t})
	b.mu.RLock()
	for o := range b.groups[user] {
		b.enqueue(o, event)
	}
	b.mu.RUnlock()
	reply, _ := json.Marshal(replyFrame{Type: "reply", ID: f.ID, Re: f.Type, Op: "created", Task: t, TaskID: seq})
	b.enqueue(s, reply)
}

// enqueue never blocks: a full queue closes the socket as a slow consumer.
func (b *broadcaster) enqueue(s *sub, msg []byte) {
	select {
	case s.msgs <- msg:
	default:
		s.closeSlow()
	}
}
