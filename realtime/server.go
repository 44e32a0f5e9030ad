package realtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

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
	DeleteSeries(ctx context.Context, userID string, id int64, opts tasks.MutationOptions) (tasks.Result, error)
	List(ctx context.Context, userID string, q tasks.ListQuery) (tasks.Page, error)
	SnapshotPages(ctx context.Context, userID string, pageSize int, fn func(seq int64, page []tasks.Task) error) (int64, error)
	History(ctx context.Context, userID string, id int64, limit int) (tasks.History, error)
	Restore(ctx context.Context, userID string, id int64, version int, opts tasks.MutationOptions) (tasks.Result, error)
}

// Defaults of [Config], used by cmd/server's configuration too.
const (
	DefaultMaxFrameBytes     = 64 << 10
	DefaultFrameRate         = 20
	DefaultFrameBurst        = 40
	DefaultMaxSocketsPerUser = 32
	DefaultSendQueueBytes    = 1 << 20
	DefaultWriteTimeout      = 10 * time.Second
	DefaultPingInterval      = 25 * time.Second
	DefaultPongTimeout       = 10 * time.Second
	DefaultRequestTimeout    = 10 * time.Second
	DefaultMaxInFlight       = 8
	DefaultMaxSnapshots      = 4
	DefaultSnapshotTimeout   = time.Minute
)

// Config are the socket limits; zero fields take the Default* values.
type Config struct {
	MaxFrameBytes     int64         // read limit per client frame (close 1009 beyond)
	FrameRate         float64       // frames/s sustained per socket
	FrameBurst        int           // frames burst per socket
	MaxSocketsPerUser int           // sockets per user on one instance (close 4009 beyond)
	SendQueueBytes    int           // queued for a socket before it is a slow consumer
	WriteTimeout      time.Duration // a peer that accepts nothing for this long is dropped
	PingInterval      time.Duration // between server pings (one in flight at a time)
	PongTimeout       time.Duration // for the pong; a dead peer is dropped within PingInterval+PongTimeout
	RequestTimeout    time.Duration // for the work of one client request
	// MaxInFlight bounds the requests of one socket being worked on at once;
	// more are refused with rate_limited until replies come back.
	MaxInFlight int
	// MaxSnapshots bounds the snapshots being built at once on this
	// instance (each holds a read transaction and a page of rows);
	// SnapshotTimeout bounds one, client reading included.
	MaxSnapshots    int
	SnapshotTimeout time.Duration
	// CatchupQueries bounds the catch-up queries (current seq of a new
	// socket, change-log replay) running at once on this instance; reads
	// that arrive meanwhile are grouped into the next query (catchup.go).
	CatchupQueries int
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
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.FrameRate <= 0 {
		c.FrameRate = DefaultFrameRate
	}
	def(&c.FrameBurst, DefaultFrameBurst)
	def(&c.MaxSocketsPerUser, DefaultMaxSocketsPerUser)
	def(&c.SendQueueBytes, DefaultSendQueueBytes)
	def(&c.MaxInFlight, DefaultMaxInFlight)
	def(&c.MaxSnapshots, DefaultMaxSnapshots)
	def(&c.CatchupQueries, DefaultCatchupQueries)
	defDur(&c.WriteTimeout, DefaultWriteTimeout)
	defDur(&c.PingInterval, DefaultPingInterval)
	defDur(&c.PongTimeout, DefaultPongTimeout)
	defDur(&c.RequestTimeout, DefaultRequestTimeout)
	defDur(&c.SnapshotTimeout, DefaultSnapshotTimeout)
}

// Subprotocol is the WebSocket subprotocol of this protocol. Browsers,
// which cannot set headers on a WebSocket, send their token as a second
// subprotocol: new WebSocket(url, ["tasksync.v1", "bearer." + token]); the
// server answers with Subprotocol alone.
const Subprotocol = "tasksync.v1"

const bearerProtocolPrefix = "bearer."

// Server serves GET /ws: it authenticates, upgrades, and runs sessions. It
// owns every session's goroutines; [Server.Shutdown] closes the sessions
// and waits for them.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	hub      *Hub
	changes  changeReader
	reads    *groupReader // catch-up reads, grouped across sessions
	tasks    TaskService
	verifier auth.TokenVerifier
	metrics  *Metrics
	chat     ChatService
	handlers map[string]handler

	// snapshotSlots bounds the snapshots being built at once.
	snapshotSlots chan struct{}

	mu      sync.Mutex
	closing bool
	active  int           // sessions started and not yet torn down
	drained chan struct{} // closed once closing and active == 0
	isDrain bool          // drained is closed
}

// ServerDeps are the collaborators of a Server.
type ServerDeps struct {
	Logger   *slog.Logger
	Hub      *Hub
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
	srv := &Server{cfg: cfg, logger: d.Logger, hub: d.Hub, changes: d.Hub.changes, tasks: d.Tasks,
		verifier: d.Verifier, metrics: d.Hub.metrics, chat: d.Chat,
		snapshotSlots: make(chan struct{}, cfg.MaxSnapshots), drained: make(chan struct{})}
	srv.reads = newGroupReader(srv.changes, srv.metrics, cfg.CatchupQueries)
	srv.handlers = srv.handlerTable()
	return srv
}

// token reads the bearer token from, in order: the Authorization header
// (CLI clients), a "bearer.<token>" subprotocol offered alongside
// Subprotocol (browsers), or the access_token query parameter (older
// browser clients; discouraged, since URLs end up in browser consoles and
// proxy logs; the request logger records paths only).
func token(r *http.Request) (string, error) {
	if t, ok := auth.BearerToken(r); ok {
		return t, nil
	}
	var bearer string
	offered := false
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			p = strings.TrimSpace(p)
			switch {
			case p == Subprotocol:
				offered = true
			case strings.HasPrefix(p, bearerProtocolPrefix):
				bearer = strings.TrimPrefix(p, bearerProtocolPrefix)
			}
		}
	}
	if bearer != "" {
		if !offered {
			return "", tasksync.Errorf(tasksync.CodeBadRequest, "offer the %q subprotocol alongside bearer.<token>", Subprotocol)
		}
		return bearer, nil
	}
	return r.URL.Query().Get("access_token"), nil
}

// ServeHTTP authenticates before upgrading: a missing or bad token gets a
// plain 401 (wscat shows it; browsers see close 1006 and should check the
// token's expiry before retrying).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := token(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tasksync"`)
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnauthorized,
			"missing token: send Authorization: Bearer <token>, or the subprotocols %q and \"bearer.<token>\"", Subprotocol))
		return
	}
	id, err := srv.verifier.Verify(r.Context(), raw)
	if err != nil {
		if tasksync.ErrorCode(err) == tasksync.CodeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tasksync", error="invalid_token"`)
		}
		httpjson.WriteError(w, r, err)
		return
	}
	var since *int64
	if s := r.URL.Query().Get("since"); s != "" {
		n, ok := parseSeq(s)
		if !ok {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeBadRequest, "since must be a whole number in plain decimal digits"))
			return
		}
		since = &n
	}
	var batch bool
	switch r.URL.Query().Get("batch") {
	case "", "0":
	case "1":
		batch = true
	default:
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeBadRequest, "batch must be 1 (several frames per message, one a line) or 0"))
		return
	}
	startSeq, err := srv.reads.currentSeq(r.Context(), id.UserID, false)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	// The socket's writes go through a cork (cork.go), which the writer
	// uses to write each wake-up's frames together.
	cw := &corkingWriter{ResponseWriter: w, timeout: srv.cfg.WriteTimeout}
	conn, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		OriginPatterns: srv.cfg.OriginPatterns,
		Subprotocols:   []string{Subprotocol},
	})
	if err != nil {
		// Accept has answered (403 for a refused origin).
		reqlog.Logger(r.Context()).InfoContext(r.Context(), "socket refused", "err", err)
		return
	}
	conn.SetReadLimit(srv.cfg.MaxFrameBytes)
	s := newSession(srv, conn, reqlog.NewID(), id.UserID, startSeq, id.ExpiresAt)
	s.cork = cw.conn
	s.batch = batch
	s.presence = newPresenceEntry(PresenceEntry{SessionID: s.id, UserID: s.userID, Device: device(r),
		Instance: srv.hub.instance, ConnectedAt: time.Now().UTC().Truncate(time.Millisecond)})
	srv.start(s, since, id)
	// A sign-out everywhere that landed between the token check and the
	// registration closed the user's sessions without this one: check the
	// token again now that a revocation would reach it.
	if _, err := srv.verifier.Verify(r.Context(), raw); tasksync.ErrorCode(err) == tasksync.CodeUnauthorized {
		s.close(DisconnectRevoked)
	}
}

// parseSeq reads a sequence number in its one plain spelling: 0, or
// decimal digits without a leading zero or plus sign, optionally negative
// (a negative since asks for a snapshot).
func parseSeq(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	neg := strings.HasPrefix(s, "-")
	n, ok := tasks.ParseID(strings.TrimPrefix(s, "-"))
	if neg {
		n = -n
	}
	return n, ok
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
	Type           string     `json:"type"`
	Protocol       int        `json:"protocol"`
	SessionID      string     `json:"session_id"`
	UserID         string     `json:"user_id"`
	Instance       string     `json:"instance"`
	ServerTime     time.Time  `json:"server_time"`
	Seq            int64      `json:"seq"`
	TokenExpiresAt *time.Time `json:"token_expires_at,omitempty"`
	// Batch: this socket's messages may hold several frames, a line each
	// (the client asked with ?batch=1).
	Batch  bool        `json:"batch,omitempty"`
	Limits helloLimits `json:"limits"`
}

type helloLimits struct {
	MaxFrameBytes     int64   `json:"max_frame_bytes"`
	FramesPerSecond   float64 `json:"frames_per_second"`
	FrameBurst        int     `json:"frame_burst"`
	MaxSocketsPerUser int     `json:"max_sockets_per_user"`
	SendQueueBytes    int     `json:"send_queue_bytes"`
	PingIntervalMS    int64   `json:"ping_interval_ms"`
	MaxInFlight       int     `json:"max_in_flight"`
}

var errTooManySockets = errors.New("too many sockets for this user")

// start runs a new session. hello is queued before the session can
// receive anything else: before it is registered with the hub (which
// delivers events, broker frames and closes) and before a requested replay
// starts, so it is always the first frame. With since, the session starts
// in catch-up mode, so the replay comes before any live event. Nothing here
// waits for the broker.
//
// The handler's goroutine returns once the writer and the reader run: the
// connection is hijacked, and the handler's stack, grown by the
// middleware, token verification and the set-up query, would otherwise
// stay grown for the whole life of an idle socket (about 12 KB per socket,
// measured in docs/BENCHMARKS.md).
func (srv *Server) start(s *session, since *int64, id auth.Identity) {
	hello := helloFrame{
		Type: TypeHello, Protocol: 1, SessionID: s.id, UserID: s.userID, Instance: srv.hub.instance,
		ServerTime: time.Now().UTC(), Seq: s.cursor, Batch: s.batch,
		Limits: helloLimits{
			MaxFrameBytes: srv.cfg.MaxFrameBytes, FramesPerSecond: srv.cfg.FrameRate, FrameBurst: srv.cfg.FrameBurst,
			MaxSocketsPerUser: srv.cfg.MaxSocketsPerUser, SendQueueBytes: srv.cfg.SendQueueBytes,
			PingIntervalMS: srv.cfg.PingInterval.Milliseconds(), MaxInFlight: srv.cfg.MaxInFlight,
		},
	}
	if !id.ExpiresAt.IsZero() {
		exp := id.ExpiresAt.UTC()
		hello.TokenExpiresAt = &exp
	}
	s.send(encode(hello))

	// The session starts in catch-up mode, before it is registered: live
	// events only tell it how far the log goes, until its fill goroutine,
	// started once it is registered, has read the log up to the seq current
	// after the registration. So a ?since= replay comes before any live
	// event, and an event dispatched to the user's other sessions between
	// reading the start seq and the registration is not missed.
	if since != nil {
		s.prepare(&syncRequest{since: *since})
	} else {
		s.prepare(&syncRequest{since: s.cursor, silent: true})
	}
	closing := srv.acquire()
	switch {
	case closing:
		s.close(DisconnectShutdown)
	case srv.hub.register(s, srv.cfg.MaxSocketsPerUser) != nil:
		s.close(DisconnectTooManySockets)
	default:
		s.registered = true
		if testHookRegistered != nil {
			testHookRegistered(s)
		}
		s.startFill()
		// After hello: reminders that fired while the user had no
		// session are sent now, as pending.
		srv.hub.claimReminders(s.userID)
		// Shutdown may have listed the sessions just before this one
		// registered.
		if srv.isClosing() {
			s.close(DisconnectShutdown)
		}
	}
	go s.writeLoop()
	go s.run()
}

// testHookRegistered, when set by a test, runs right after a session is
// registered: where the hub may deliver to it first.
var testHookRegistered func(*session)

// acquire counts a session in; it reports whether the server is closing.
func (srv *Server) acquire() (closing bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.active++
	return srv.closing
}

// release counts a session out and wakes Shutdown after the last one.
func (srv *Server) release() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.active--
	srv.checkDrained()
}

func (srv *Server) checkDrained() {
	if srv.closing && srv.active == 0 && !srv.isDrain {
		srv.isDrain = true
		close(srv.drained)
	}
}

func (srv *Server) isClosing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

// Shutdown closes every session with 1001 (going away: reconnect to
// another instance) and waits until they are all torn down or ctx is done.
// New sockets are closed with 1001 from the first call. It may be called
// more than once.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.closing = true
	srv.checkDrained()
	srv.mu.Unlock()
	srv.hub.closeAll(DisconnectShutdown)
	select {
	case <-srv.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
