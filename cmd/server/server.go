package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/httprate"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/cors"

	"tasksync"
	"tasksync/auth"
	tsclient "tasksync/clients/ts"
	"tasksync/docs"
	"tasksync/internal/httpjson"
	"tasksync/internal/reqlog"
	"tasksync/internal/static"
	"tasksync/migrations"
	"tasksync/realtime"
	"tasksync/reminders"
	"tasksync/tasks"
	"tasksync/tasks/quickadd"
	"tasksync/web"
)

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// migrate applies migrations and reports the schema version.
func migrate(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := connect(ctx, cfg.DatabaseURL, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := migrations.Up(ctx, pool, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", v)
	return nil
}

// connect opens the pool. maxConns, when positive, sets its size unless
// the URL names one (pool_max_conns).
func connect(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if maxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = int32(maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", pcfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// server holds the wired service; [serve] owns its lifetime.
type server struct {
	cfg      Config
	log      *slog.Logger
	db       *pgxpool.Pool
	verifier auth.TokenVerifier // signature, claims, then revocation
	revoked  *auth.Revocations
	tasks    *tasks.Service
	changes  *realtime.ChangeLog
	remind   *reminders.Service
	hub      *realtime.Hub
	sockets  *realtime.Server
	chat     *chatServer
	registry *prometheus.Registry

	schemaCurrent atomic.Bool
}

// listening is what serve tells its caller once it accepts connections:
// the bound addresses (tests listen on port 0).
type listening struct {
	API     net.Addr
	Metrics net.Addr // nil without METRICS_ADDR: /metrics is on API
}

// serve runs the service until ctx is cancelled, then shuts down in a fixed
// order: stop accepting and close every socket with 1001 (clients reconnect
// to another instance), let in-flight requests finish (both bounded by
// SHUTDOWN_TIMEOUT), stop the background loops (listener, hub, broker,
// pruner, the metrics and pprof listeners), then close Redis and the
// database pool. onListen, if not nil, is told the bound addresses.
func serve(ctx context.Context, cfg Config, log *slog.Logger, onListen func(listening)) error {
	db, err := connect(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.AutoMigrate {
		v, err := migrations.Up(ctx, db, log)
		if err != nil {
			return err
		}
		log.Info("schema current", "version", v)
	}

	// Background loops live until shutdown step 3, not until ctx: sockets
	// must still be served while they drain.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()

	verifier, err := auth.NewVerifier(bgCtx, auth.Config{
		Secret:   []byte(cfg.Auth.Secret),
		JWKSURL:  cfg.Auth.JWKSURL,
		Issuer:   cfg.Auth.Issuer,
		Audience: cfg.Auth.Audience,
		Leeway:   cfg.Auth.Leeway,
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}

	var broker realtime.Broker = realtime.NewMemoryBroker()
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb = redis.NewClient(opts)
		defer rdb.Close()
		// Redis being down at start is not fatal: task sync does not need
		// it, and go-redis keeps trying.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rdb.Ping(pctx).Err(); err != nil {
			log.Warn("redis unreachable at start; presence and cross-instance chat streams wait for it", "err", err)
		}
		cancel()
		broker = realtime.NewRedisBroker(rdb, cfg.RedisPrefix, log)
	} else {
		log.Info("REDIS_URL not set: in-process broker, presence and chat streams stay on this instance")
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := realtime.NewMetrics(registry)

	taskService := tasks.NewServiceWith(db, tasks.BatchOptions{MaxBatches: cfg.WriteBatches, MaxBatch: cfg.WriteBatchSize})
	// Reminders: River jobs enqueued in the task writes' transactions
	// (package reminders), delivered by every instance's hub to its own
	// sessions on the job's NOTIFY.
	remind, err := reminders.New(db, reminders.Config{
		FetchPollInterval: cfg.ReminderPollInterval, Workers: cfg.ReminderWorkers, Logger: log, TestOnly: cfg.reminderTestOnly,
	})
	if err != nil {
		return err
	}
	taskService.UseScheduler(remind)

	changes := realtime.NewChangeLog(db)
	hub := realtime.NewHub(realtime.HubConfig{
		Logger: log, Changes: changes, Broker: broker, Metrics: metrics,
		Instance: cfg.InstanceID, PresenceTTL: cfg.PresenceTTL,
		Reminders: realtime.NewReminderLog(db, taskService),
	})
	// Sign out everywhere: every path that checks a token (REST, socket
	// upgrade, auth.refresh, /mcp) gets the revocation check through the
	// wrapped verifier; the NOTIFY closes the user's sockets here even when
	// the broker is down.
	revoked, err := auth.NewRevocations(db, auth.RevocationConfig{
		OnRevoke: func(user string, _ time.Time) { hub.CloseUserLocal(user, realtime.DisconnectRevoked) },
	})
	if err != nil {
		return err
	}
	tokens := revoked.Verifier(verifier)
	chatSrv := newChat(ctx, cfg, log, db, hub, taskService)
	defer chatSrv.Stop() // before Redis and the pool close: turns store what they have
	registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tasksync_mutations_total", Help: "Task mutations run (REST, socket, assistant, MCP)."},
			func() float64 { m, _ := taskService.BatchStats(); return float64(m) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tasksync_write_transactions_total", Help: "Transactions those mutations ran in (group commit: several mutations per transaction under load)."},
			func() float64 { _, t := taskService.BatchStats(); return float64(t) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tasksync_batch_reruns_total", Help: "Mutations run again alone because the batch they shared was rolled back (a database outage, or one mutation that failed in a way validation did not catch)."},
			func() float64 { return float64(taskService.BatchReruns()) }),
	)
	sockets := realtime.NewServer(realtime.Config{
		MaxFrameBytes:     cfg.WSMaxFrameBytes,
		FrameRate:         cfg.WSFrameRate,
		FrameBurst:        cfg.WSFrameBurst,
		MaxSocketsPerUser: cfg.WSMaxSocketsPerUser,
		SendQueueBytes:    cfg.WSSendQueueBytes,
		PingInterval:      cfg.WSPingInterval,
		PongTimeout:       cfg.WSPongTimeout,
		WriteTimeout:      cfg.WSWriteTimeout,
		RequestTimeout:    cfg.WSRequestTimeout,
		MaxInFlight:       cfg.WSMaxInFlight,
		MaxSnapshots:      cfg.WSMaxSnapshots,
		CatchupQueries:    cfg.WSCatchupQueries,
		OriginPatterns:    cfg.WSAllowedOrigins,
	}, realtime.ServerDeps{Logger: log, Hub: hub, Tasks: taskService, Verifier: tokens, Chat: chatSrv})

	s := &server{cfg: cfg, log: log, db: db, verifier: tokens, revoked: revoked, tasks: taskService,
		changes: changes, remind: remind, hub: hub, sockets: sockets, registry: registry, chat: chatSrv}

	var bg sync.WaitGroup
	runLoop := func(name string, fn func(context.Context) error) {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := fn(bgCtx); err != nil && bgCtx.Err() == nil {
				log.Error("background loop stopped", "loop", name, "err", err)
			}
		}()
	}
	runLoop("hub", hub.Run) // fetch loop, broker delivery, presence heartbeat
	runLoop("listener", (&realtime.Listener{URL: cfg.DatabaseListenURL, Hub: hub, Logger: log,
		Handlers: map[string]pgxlisten.Handler{auth.RevocationChannel: revoked, realtime.ReminderChannel: hub.ReminderHandler()}}).Run)
	runLoop("pruner", s.prune)
	// River's goroutines (fetchers, workers, leader election and its
	// scheduler) belong to remind: started here, stopped in shutdown step 3
	// before the pool closes. The deferred Stop covers the early returns.
	if err := remind.Start(bgCtx); err != nil {
		stopBackground()
		bg.Wait()
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := remind.Stop(ctx); err != nil {
			log.Warn("shutdown: reminder jobs", "err", err)
		}
	}()
	if cfg.PprofAddr != "" {
		runLoop("pprof", func(ctx context.Context) error { return servePprof(ctx, cfg.PprofAddr, log) })
	}
	var bound listening
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			stopBackground()
			bg.Wait()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		bound.Metrics = mln.Addr()
		log.Info("metrics listening", "addr", mln.Addr().String())
		runLoop("metrics", func(ctx context.Context) error { return servePrivate(ctx, "metrics", mln, s.metricsRoutes()) })
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		stopBackground()
		bg.Wait()
		return fmt.Errorf("LISTEN_ADDR: %w", err)
	}
	bound.API = ln.Addr()
	// Bodies are bounded per request by httpjson.BodyDeadline (routes), not
	// by ReadTimeout: a request refused before its body is read must also
	// have its connection closed at once, or net/http waits for the body
	// before it even sends the refusal. Responses have no deadline: chat
	// answers stream for as long as the model takes.
	httpSrv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bgCtx },
	}
	log.Info("listening", "addr", ln.Addr().String(), "instance", cfg.InstanceID)
	if onListen != nil {
		onListen(bound)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	select {
	case err := <-serveErr:
		stopBackground()
		bg.Wait()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// 1. Stop accepting; in-flight requests finish. 2. Sockets (hijacked,
	// so invisible to http.Server) close with 1001.
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Shutdown(shutdownCtx) }()
	if err := sockets.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown: sockets still open at the deadline", "err", err)
	}
	if err := <-httpDone; err != nil {
		log.Warn("shutdown: requests still running at the deadline were cut", "err", err)
		_ = httpSrv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http server", "err", err)
	}
	// 3. Background loops: River first (a reminder job that is running
	// finishes, so its NOTIFY may still reach the other instances), then
	// the listener, hub and pruner. 4. Redis and the pool close by their
	// defers.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := remind.Stop(stopCtx); err != nil {
		log.Warn("shutdown: reminder jobs still running at the deadline", "err", err)
	}
	cancelStop()
	stopBackground()
	bg.Wait()
	log.Info("stopped")
	return nil
}

// prune deletes change events and idempotency results past retention,
// every PruneInterval. Several instances pruning at once is harmless.
func (s *server) prune(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if n, err := s.changes.Prune(ctx, s.cfg.EventRetention); err != nil {
			s.log.Warn("prune change log", "err", err)
		} else if n > 0 {
			s.log.Info("pruned change log", "events", n)
		}
		if n, err := s.remind.Prune(ctx, s.cfg.EventRetention); err != nil {
			s.log.Warn("prune reminders", "err", err)
		} else if n > 0 {
			s.log.Info("pruned delivered reminders", "reminders", n)
		}
		if n, err := s.tasks.PruneIdempotencyKeys(ctx, s.cfg.IdempotencyRetention); err != nil {
			s.log.Warn("prune idempotency keys", "err", err)
		} else if n > 0 {
			s.log.Info("pruned idempotency keys", "keys", n)
		}
	}
}

// routes builds the HTTP handler: request ids and logging outermost, then
// panic recovery, CORS, and the routes; API routes are authenticated, checked
// against the path user and rate limited per user.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /openapi.json", openAPIHandler()) // public: the REST contract (docs/openapi.yaml)

	if s.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", s.metricsHandler())
	}
	mux.Handle("GET /ws", s.sockets)

	api := s.apiMiddleware()
	(&tasks.Handler{Service: s.tasks, MaxBody: s.cfg.MaxBodyBytes}).Register(mux, api)
	// The quick-add preview: text in, task fields out; nothing stored.
	(&quickadd.Handler{MaxBody: s.cfg.MaxBodyBytes}).Register(mux, api)
	s.chat.register(mux, api, s.verifier) // /api/{user_id}/chat, /conversations, /mcp
	// Sign out everywhere: refuse the caller's current tokens and close
	// their sockets, on every instance.
	mux.Handle("DELETE /api/{user_id}/sessions", api(http.HandlerFunc(s.closeSessions)))
	// The browser client: the page at / and its files. Exact patterns, not
	// "GET /", so that unknown paths (and other methods) keep their JSON 404/405.
	webClient := web.Handler()
	mux.Handle("GET /{$}", webClient)
	mux.Handle("GET "+web.AssetsPrefix, webClient)
	mux.Handle("GET "+web.ServiceWorkerPath, webClient) // the offline shell
	// The TypeScript SDK, for pages that import it from this server:
	// /sdk/tasksync-client.js and the other files of clients/ts/dist.
	mux.Handle("GET "+tsclient.Prefix, tsclient.Handler())

	var h http.Handler = httpjson.Routes(mux)
	// Without CORS_ALLOWED_ORIGINS no CORS handler at all: same origin
	// only. (rs/cors would take an empty list for "every origin".)
	if len(s.cfg.CORSAllowedOrigins) > 0 {
		h = s.cors(h)
	}
	h = httpjson.BodyDeadline(s.cfg.BodyTimeout)(h)
	h = recoverer(h)
	h = reqlog.Middleware(s.log)(h)
	return h
}

// cors lets the browser origins of CORS_ALLOWED_ORIGINS call the API with
// credentials.
func (s *server) cors(h http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowedOrigins: s.cfg.CORSAllowedOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Accept", "Idempotency-Key", "If-Match", "If-None-Match", "X-Request-Id",
			"Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID"}, // the last three for browser MCP clients
		ExposedHeaders: []string{"ETag", "Location", "Link", "X-Next-Cursor", "X-Request-Id", "Idempotent-Replayed", "Retry-After",
			"Mcp-Session-Id"},
		AllowCredentials: true,
		MaxAge:           600,
	}).Handler(h)
}

func (s *server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// metricsRoutes is the handler of the METRICS_ADDR listener.
func (s *server) metricsRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	return mux
}

// apiMiddleware authenticates, checks the path user, then rate limits by
// the authenticated user (so one user cannot starve the others).
func (s *server) apiMiddleware() func(http.Handler) http.Handler {
	limiter := httprate.NewRateLimiter(s.cfg.APIRateLimit, s.cfg.APIRateWindow,
		httprate.WithKeyFuncs(func(r *http.Request) (string, error) {
			id, _ := auth.FromContext(r.Context())
			return id.UserID, nil
		}),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeRateLimited, "too many requests; retry after the time in Retry-After"))
		}),
	)
	authn := auth.Middleware(s.verifier)
	return func(next http.Handler) http.Handler {
		return authn(auth.RequirePathUser(limiter.Handler(next)))
	}
}

// closeSessions signs the caller out everywhere. The revocation is stored
// first (503 when it cannot be: nothing is promised then): from its commit
// on, every token of the user issued before it is refused on every
// instance, and its NOTIFY makes every instance close the user's sockets
// with 4010. The sockets on this instance are closed at once, and the
// broker message to the others is a second path, so a broker outage does
// not fail the request.
func (s *server) closeSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := auth.FromContext(ctx)
	if _, err := s.revoked.Revoke(ctx, id.UserID); err != nil {
		reqlog.Logger(ctx).WarnContext(ctx, "sign out everywhere: revocation not stored", "err", err)
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnavailable, "could not store the sign-out; try again"))
		return
	}
	if err := s.hub.CloseUser(ctx, id.UserID, realtime.DisconnectRevoked); err != nil {
		reqlog.Logger(ctx).WarnContext(ctx, "sign out everywhere: broker unreachable; other instances close the sockets on the revocation's notification", "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// ready answers 200 when the database answers and its schema is current.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readyz: database unreachable", "err", err)
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnavailable, "database unreachable"))
		return
	}
	if !s.schemaCurrent.Load() {
		pending, err := migrations.Pending(ctx, s.db)
		if err != nil {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnavailable, "schema version unknown"))
			return
		}
		if pending {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnavailable, "database schema is behind this binary: run `server migrate`"))
			return
		}
		s.schemaCurrent.Store(true)
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ready"})
}

// openAPIHandler serves docs/openapi.yaml as JSON, converted once. Clients
// may cache it for five minutes and then revalidate with its ETag (a
// deployment changes it).
func openAPIHandler() http.Handler {
	body, err := docs.OpenAPIJSON()
	f := static.NewFile("openapi.json", body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil { // the embedded document is checked by the tests
			httpjson.WriteError(w, r, fmt.Errorf("docs/openapi.yaml: %w", err))
			return
		}
		f.Serve(w, r, "public, max-age=300")
	})
}

// recoverer turns a panic in a handler into a logged 500 instead of a
// dropped connection.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				reqlog.Logger(r.Context()).ErrorContext(r.Context(), "panic", "panic", v)
				httpjson.WriteError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// servePprof serves net/http/pprof on its own listener (PPROF_ADDR, which
// config restricts to loopback), never on the API's, until ctx ends.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	log.Info("pprof listening", "addr", addr)
	return servePrivate(ctx, "pprof", ln, mux)
}

// servePrivate serves h on ln, a listener of its own beside the API's, until
// ctx ends.
func servePrivate(ctx context.Context, name string, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
