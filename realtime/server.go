package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"tasksync"
	"tasksync/auth"
	"tasksync/internal/httpjson"
	"tasksync/internal/reqlog"
	"tasksync/tasks"
)

// TaskService is what sessions need of the task service (tasks.Service).
type TaskService interface {
	Create(ctx context.Context, userID string, f tasks.Fields, opts tasks.MutationOptions) (tasks.Result, error)
	Update(ctx context.Context, userID string, id int64, f tasks.Fields, opts tasks.MutationOptions) (tasks.Result, error)
	SetCompleted(ctx context.Context, userID string, id int64, completed *bool, opts tasks.MutationOptions) (tasks.Result, error)
	Delete(ctx context.Context, userID string, id int64, opts tasks.MutationOptions) (tasks.Result, error)
	List(ctx context.Context, userID string, q tasks.ListQuery) (tasks.Page, error)
	Snapshot(ctx context.Context, userID string) ([]tasks.Task, int64, error)
}

// Config are the socket limits; zero fields take the defaults shown.
type Config struct {
	MaxFrameBytes     int64         // 65536: read limit per client frame (close 1009 beyond)
	FrameRate         float64       // 20 frames/s sustained per socket
	FrameBurst        int           // 40 frames burst per socket
	MaxSocketsPerUser int           // 32 sockets per user on one instance
	SendQueueBytes    int           // 1 MiB queued for a socket before it is a slow consumer
	WriteTimeout      time.Duration // 10s per write
	PingInterval      time.Duration // 25s between server pings
	PongTimeout       time.Duration // 10s for the pong; a dead peer is dropped within PingInterval+PongTimeout
	RequestTimeout    time.Duration // 10s for the work of one client request
	// OriginPatterns are the host patterns (path.Match) of other origins
	// allowed to open sockets; the server's own origin always is.
	OriginPatterns []string
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 20
	}
	def(&c.FrameBurst, 40)
	def(&c.MaxSocketsPerUser, 32)
	def(&c.SendQueueBytes, 1<<20)
	defDur(&c.WriteTimeout, 10*time.Second)
	defDur(&c.PingInterval, 25*time.Second)
	defDur(&c.PongTimeout, 10*time.Second)
	defDur(&c.RequestTimeout, 10*time.Second)
}

// subscribeWait bounds how long a new session waits for its user's broker
// subscription.
const subscribeWait = 2 * time.Second

// Server serves GET /ws: it authenticates, upgrades, and runs sessions.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	hub      *Hub
	changes  *ChangeLog
	tasks    TaskService
	verifier auth.TokenVerifier
	metrics  *Metrics
	chat     ChatService
}

// ServerDeps are the collaborators of a Server.
type ServerDeps struct {
	Logger   *slog.Logger
	Hub      *Hub
	Changes  *ChangeLog
	Tasks    TaskService
	Verifier auth.TokenVerifier
	// Chat, if not nil, serves chat.send and chat.cancel frames.
	Chat ChatService
}

// NewServer returns a socket Server.
func NewServer(cfg Config, d ServerDeps) *Server {
	cfg.defaults()
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Server{cfg: cfg, logger: d.Logger, hub: d.Hub, changes: d.Changes, tasks: d.Tasks,
		verifier: d.Verifier, metrics: d.Hub.metrics, chat: d.Chat}
}

// token reads the bearer token from the Authorization header or, for
// browsers (which cannot set headers on a WebSocket), the access_token
// query parameter. The request logger records paths only, never queries.
func token(r *http.Request) string {
	if t, ok := auth.BearerToken(r); ok {
		return t
	}
	return r.URL.Query().Get("access_token")
}

// ServeHTTP authenticates before upgrading: a missing or bad token gets a
// plain 401 (wscat shows it; browsers see close 1006 and should check the
// token's expiry before retrying).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw := token(r)
	if raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tasksync"`)
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnauthorized, "missing token: send Authorization: Bearer <token> or ?access_token=<token>"))
		return
	}
	id, err := srv.verifier.Verify(r.Context(), raw)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tasksync", error="invalid_token"`)
		httpjson.WriteError(w, r, err)
		return
	}
	var since *int64
	if s := r.URL.Query().Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeBadRequest, "since must be a whole number"))
			return
		}
		since = &n
	}
	startSeq, err := srv.changes.CurrentSeq(r.Context(), id.UserID)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: srv.cfg.OriginPatterns})
	if err != nil {
		// Accept has answered (403 for a refused origin).
		reqlog.Logger(r.Context()).InfoContext(r.Context(), "socket refused", "err", err)
		return
	}
	conn.SetReadLimit(srv.cfg.MaxFrameBytes)

	s := &session{
		id:      reqlog.NewID(),
		userID:  id.UserID,
		srv:     srv,
		conn:    conn,
		limiter: rate.NewLimiter(rate.Limit(srv.cfg.FrameRate), srv.cfg.FrameBurst),
	}
	s.init(context.WithoutCancel(r.Context()), startSeq, id.ExpiresAt)
	s.presence = newPresenceEntry(PresenceEntry{SessionID: s.id, UserID: s.userID, Device: device(r), Instance: srv.hub.instance, ConnectedAt: time.Now().UTC().Truncate(time.Millisecond)})
	srv.serveSession(s, since, id)
}

// device is the client's label for presence: ?device=, else a short form
// of the User-Agent.
func device(r *http.Request) string {
	d := r.URL.Query().Get("device")
	if d == "" {
		d = r.UserAgent()
	}
	if len(d) > 64 {
		d = d[:64]
	}
	return strings.ToValidUTF8(d, "")
}

type helloFrame struct {
	Type           string      `json:"type"`
	Protocol       int         `json:"protocol"`
	SessionID      string      `json:"session_id"`
	UserID         string      `json:"user_id"`
	Instance       string      `json:"instance"`
	ServerTime     time.Time   `json:"server_time"`
	Seq            int64       `json:"seq"`
	TokenExpiresAt *time.Time  `json:"token_expires_at,omitempty"`
	Limits         helloLimits `json:"limits"`
}

type helloLimits struct {
	MaxFrameBytes     int64   `json:"max_frame_bytes"`
	FramesPerSecond   float64 `json:"frames_per_second"`
	FrameBurst        int     `json:"frame_burst"`
	MaxSocketsPerUser int     `json:"max_sockets_per_user"`
	SendQueueBytes    int     `json:"send_queue_bytes"`
	PingIntervalMS    int64   `json:"ping_interval_ms"`
}

// serveSession sets a session up on the handler goroutine (writer,
// registration, hello, presence) and then runs its read loop on a fresh
// goroutine, returning the handler: the connection is hijacked, and the
// handler's stack, grown by the middleware, token verification and the
// set-up queries, would otherwise stay grown for the whole life of an
// idle socket (about 12 KB per socket, measured in docs/BENCHMARKS.md).
func (srv *Server) serveSession(s *session, since *int64, id auth.Identity) {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	// finish ends the socket. If the server asked to close, the writer is
	// sending the close frame: let it finish (its writes are bounded by
	// WriteTimeout). Otherwise the peer is gone and the writer is told to
	// stop.
	finish := func() {
		if !s.isClosing() {
			s.cancel()
		}
		<-writerDone
		s.conn.CloseNow()
	}

	hello := helloFrame{
		Type: TypeHello, Protocol: 1, SessionID: s.id, UserID: s.userID, Instance: srv.hub.instance,
		ServerTime: time.Now().UTC(), Seq: s.cursor,
		Limits: helloLimits{
			MaxFrameBytes: srv.cfg.MaxFrameBytes, FramesPerSecond: srv.cfg.FrameRate, FrameBurst: srv.cfg.FrameBurst,
			MaxSocketsPerUser: srv.cfg.MaxSocketsPerUser, SendQueueBytes: srv.cfg.SendQueueBytes,
			PingIntervalMS: srv.cfg.PingInterval.Milliseconds(),
		},
	}
	if !id.ExpiresAt.IsZero() {
		exp := id.ExpiresAt.UTC()
		hello.TokenExpiresAt = &exp
	}

	ready, err := srv.hub.register(s, s.cursor, srv.cfg.MaxSocketsPerUser)
	if err != nil {
		code, reason := CloseTooManySockets, "too many sockets for this user; close another tab or device"
		if errors.Is(err, errShuttingDown) {
			code, reason = CloseGoingAway, "server shutting down; reconnect"
		}
		srv.metrics.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
		s.close(code, reason)
		go finish() // the writer's Close reads the peer's close frame itself
		return
	}
	// Start once the broker delivers this user's messages here, so that
	// the session sees its own presence join and any chat turn it starts;
	// with Redis down, go on after a moment (task sync does not need it).
	select {
	case <-ready:
	case <-time.After(subscribeWait):
		srv.logger.Warn("socket: broker subscription not confirmed in time; presence and chat streams may lag", "session", s.id)
	case <-s.ctx.Done():
	}
	s.send(encode(hello))
	if since != nil {
		s.requestSync(nil, *since)
	}
	srv.hub.presenceJoin(s, srv.hub.presenceTTL)

	go func() {
		defer finish()
		defer func() {
			srv.hub.unregister(s)
			srv.hub.presenceLeave(s)
		}()
		srv.readLoop(s)
	}()
}

// readLoop reads and handles client frames until the socket fails or closes.
func (srv *Server) readLoop(s *session) {
	violations := 0
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			code := websocket.CloseStatus(err)
			if code == -1 {
				code = 1006
			}
			if errors.Is(err, websocket.ErrMessageTooBig) {
				code = CloseTooBig
			}
			srv.metrics.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
			return
		}
		if !s.limiter.Allow() {
			violations++
			srv.metrics.framesIn.WithLabelValues("rate_limited").Inc()
			if violations > srv.cfg.FrameBurst {
				s.close(CloseRateLimited, "rate limit exceeded; reconnect later and send less")
				continue // keep reading until the writer closes the socket
			}
			f, _ := decodeFrame(data)
			r := s.limiter.Reserve()
			wait := r.Delay()
			r.Cancel()
			b, _ := json.Marshal(errorFrame{Type: TypeError, ID: f.ID, Re: f.Type, Code: tasksync.CodeRateLimited,
				Message: "too many frames; wait retry_after_ms", RetryAfterMS: max(wait.Milliseconds(), 1)})
			s.send(b)
			continue
		}
		violations = 0
		if typ != websocket.MessageText {
			s.send(encodeError(nil, "", tasksync.Errorf(tasksync.CodeBadRequest, "frames must be JSON text, not binary")))
			continue
		}
		f, err := decodeFrame(data)
		if err != nil {
			srv.metrics.framesIn.WithLabelValues("invalid").Inc()
			s.send(encodeError(f.ID, f.Type, err))
			continue
		}
		srv.handle(s, f)
	}
}

var knownTypes = map[string]bool{
	TypePing: true, TypeTaskCreate: true, TypeTaskUpdate: true, TypeTaskDone: true, TypeTaskDelete: true,
	TypeTaskList: true, TypeSync: true, TypeAuthRefresh: true, TypePresence: true, TypeChatSend: true, TypeChatCancel: true,
}

type replyFrame struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id,omitempty"`
	Re       string          `json:"re"`
	Op       tasks.Op        `json:"op,omitempty"`
	Task     *tasks.Task     `json:"task,omitempty"`
	TaskID   int64           `json:"task_id,omitempty"`
	Replayed bool            `json:"replayed,omitempty"`
}

type listReplyFrame struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	Re         string          `json:"re"`
	Tasks      []tasks.Task    `json:"tasks"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

type pongFrame struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	ServerTime time.Time       `json:"server_time"`
}

type presenceReplyFrame struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id,omitempty"`
	Re       string          `json:"re"`
	Online   int             `json:"online"`
	Sessions []PresenceEntry `json:"sessions"`
}

type refreshReplyFrame struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id,omitempty"`
	Re        string          `json:"re"`
	ExpiresAt *time.Time      `json:"expires_at"`
}

// handle answers one well-formed client frame.
func (srv *Server) handle(s *session, f inFrame) {
	label := f.Type
	if !knownTypes[label] {
		label = "invalid"
	}
	srv.metrics.framesIn.WithLabelValues(label).Inc()

	ctx, cancel := context.WithTimeout(s.ctx, srv.cfg.RequestTimeout)
	defer cancel()
	reply, err := srv.dispatch(ctx, s, f)
	if err != nil {
		if level, ok := tasksync.LogLevel(err); ok {
			srv.logger.Log(ctx, level, "socket request failed", "session", s.id, "type", f.Type, "err", err)
		}
		s.send(encodeError(f.ID, f.Type, err))
		return
	}
	if reply != nil {
		s.send(reply)
	}
}

func (srv *Server) dispatch(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	opts := tasks.MutationOptions{IdempotencyKey: f.MutationID, IfVersion: f.BaseVersion}
	if len(f.MutationID) > tasks.MaxIdempotencyKey {
		return nil, tasksync.Invalid(map[string]string{"mutation_id": "must be at most 200 bytes"})
	}
	mutation := func(res tasks.Result, err error) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		return encode(replyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, Op: res.Op, Task: res.Task, TaskID: res.TaskID, Replayed: res.Replayed}), nil
	}
	needTask := func() error {
		if f.TaskID <= 0 {
			return tasksync.Invalid(map[string]string{"task_id": "is required: the id of one of your tasks"})
		}
		return nil
	}
	switch f.Type {
	case TypePing:
		return encode(pongFrame{Type: TypePong, ID: f.ID, ServerTime: time.Now().UTC()}), nil

	case TypeTaskCreate:
		fields, err := taskFields(f.Task)
		if err != nil {
			return nil, err
		}
		return mutation(srv.tasks.Create(ctx, s.userID, fields, opts))

	case TypeTaskUpdate:
		if err := needTask(); err != nil {
			return nil, err
		}
		fields, err := taskFields(f.Task)
		if err != nil {
			return nil, err
		}
		return mutation(srv.tasks.Update(ctx, s.userID, f.TaskID, fields, opts))

	case TypeTaskDone:
		if err := needTask(); err != nil {
			return nil, err
		}
		return mutation(srv.tasks.SetCompleted(ctx, s.userID, f.TaskID, f.Completed, opts))

	case TypeTaskDelete:
		if err := needTask(); err != nil {
			return nil, err
		}
		return mutation(srv.tasks.Delete(ctx, s.userID, f.TaskID, opts))

	case TypeTaskList:
		values, err := filterValues(f.Filter)
		if err != nil {
			return nil, err
		}
		q, err := tasks.ParseListQuery(values)
		if err != nil {
			return nil, err
		}
		page, err := srv.tasks.List(ctx, s.userID, q)
		if err != nil {
			return nil, err
		}
		return encode(listReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, Tasks: page.Tasks, NextCursor: page.NextCursor}), nil

	case TypeSync:
		if f.Since == nil {
			return nil, tasksync.Invalid(map[string]string{"since": "is required: the last seq you applied (0 for everything)"})
		}
		s.requestSync(f.ID, *f.Since)
		return nil, nil // answered by synced or snapshot

	case TypeAuthRefresh:
		return srv.refresh(ctx, s, f)

	case TypePresence:
		lctx, lcancel := context.WithTimeout(ctx, brokerTimeout)
		defer lcancel()
		list, err := srv.hub.broker.PresenceList(lctx, s.userID)
		srv.hub.brokerResult(err)
		if err != nil {
			return nil, tasksync.Errorf(tasksync.CodeUnavailable, "presence is unavailable right now; task sync is not affected")
		}
		return encode(presenceReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, Online: len(list), Sessions: list}), nil

	case TypeChatSend, TypeChatCancel:
		if srv.chat == nil {
			return nil, tasksync.Errorf(tasksync.CodeUnavailable, "the chat assistant is not enabled on this server")
		}
		return srv.chatFrame(s, f)

	default:
		return nil, tasksync.Errorf(tasksync.CodeBadRequest, "unknown frame type %q; see docs/PROTOCOL.md", f.Type)
	}
}

// taskFields decodes the task object of a create/update frame.
func taskFields(raw json.RawMessage) (tasks.Fields, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return tasks.Fields{}, tasksync.Invalid(map[string]string{"task": "is required: an object with the task's fields"})
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return tasks.Fields{}, tasksync.Invalid(map[string]string{"task": "must be an object"})
	}
	return tasks.DecodeFields(m)
}

// refresh swaps the session's token for a newer one of the same user.
func (srv *Server) refresh(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if f.Token == "" {
		return nil, tasksync.Invalid(map[string]string{"token": "is required"})
	}
	id, err := srv.verifier.Verify(ctx, f.Token)
	if err != nil {
		// The socket lives on until the current token expires.
		return nil, err
	}
	if id.UserID != s.userID {
		s.send(encodeError(f.ID, f.Type, tasksync.Errorf(tasksync.CodeForbidden, "the new token belongs to another user")))
		s.close(CloseForbidden, "token of another user")
		return nil, nil
	}
	var exp *time.Time
	if id.ExpiresAt.IsZero() {
		s.expiresAt.Store(0)
	} else {
		e := id.ExpiresAt.UTC()
		exp = &e
		s.expiresAt.Store(e.UnixNano())
	}
	return encode(refreshReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, ExpiresAt: exp}), nil
}
