package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"tasksync/chat"
	"tasksync/internal/httpjson"
	"tasksync/internal/reqlog"
	"tasksync/realtime"
	"tasksync/reminders"
	"tasksync/tasks"
)

// Config is everything the server reads from the environment. Each field
// names its variable and default; [loadConfig] validates all of them and
// stops at the first bad one with a message naming the variable.
type Config struct {
	// DATABASE_URL (required): the Postgres the service stores tasks in.
	DatabaseURL string
	// DATABASE_LISTEN_URL: a direct (not transaction-pooled) URL for the
	// LISTEN connection; defaults to DATABASE_URL. Hosted Postgres often
	// hands out a PgBouncer URL, which silently breaks LISTEN.
	DatabaseListenURL string
	// DATABASE_MAX_CONNS (default 16): size of the connection pool, unless
	// the URL sets pool_max_conns. Writes are group-committed, so a handful
	// of connections carry many concurrent writers.
	DatabaseMaxConns int
	// DATABASE_WRITE_BATCHES (default 4): transactions that may apply
	// mutations at once; concurrent mutations beyond them share those
	// transactions (group commit). DATABASE_WRITE_BATCH_SIZE (default 64)
	// caps the mutations in one.
	WriteBatches   int
	WriteBatchSize int
	// REDIS_URL: Redis for presence, chat streams and session control
	// across instances. Empty: an in-process broker (one instance only).
	RedisURL string
	// LISTEN_ADDR (default :8080): the HTTP listen address.
	ListenAddr string
	// AUTO_MIGRATE (default true): apply migrations at start (under an
	// advisory lock, so concurrent starts are safe).
	AutoMigrate bool

	Auth AuthConfig
	Chat ChatConfig

	// CORS_ALLOWED_ORIGINS: comma-separated origins (scheme://host[:port])
	// allowed to call the REST API from a browser with credentials, e.g. the
	// seed's Next.js app at http://localhost:3000. Empty: same origin only
	// (no CORS headers at all: browsers refuse every other origin).
	CORSAllowedOrigins []string
	// WS_ALLOWED_ORIGINS: comma-separated host patterns (path.Match syntax,
	// e.g. "localhost:3000", "*.example.com") allowed to open sockets in
	// addition to the server's own origin. Defaults to the hosts of
	// CORS_ALLOWED_ORIGINS.
	WSAllowedOrigins []string

	// HTTP_MAX_BODY_BYTES (default 65536): request body limit.
	MaxBodyBytes int64
	// HTTP_BODY_TIMEOUT (default 30s): how long a request body may take to
	// arrive after its headers; slower bodies are cut off and their
	// connection closed (httpjson.BodyDeadline). Headers themselves have
	// 10s. Responses are not bounded: chat answers stream for longer.
	BodyTimeout time.Duration
	// API_RATE_LIMIT (default 600) requests per API_RATE_WINDOW (default 1m)
	// per user on the REST API.
	APIRateLimit  int
	APIRateWindow time.Duration

	// REDIS_PREFIX (default tasksync): prefix of Redis channels and keys,
	// so that deployments sharing a Redis do not see each other.
	RedisPrefix string
	// INSTANCE_ID (default: host name and a random suffix): names this
	// instance in presence entries, hello frames and logs.
	InstanceID string

	// Socket limits (defaults in realtime.Default*): WS_MAX_FRAME_BYTES
	// (65536), WS_FRAME_RATE (20/s), WS_FRAME_BURST (40),
	// WS_MAX_SOCKETS_PER_USER (32), WS_SEND_QUEUE_BYTES (1 MiB),
	// WS_PING_INTERVAL (25s), WS_PONG_TIMEOUT (10s), WS_WRITE_TIMEOUT (10s:
	// a peer that accepts nothing for this long is dropped),
	// WS_REQUEST_TIMEOUT (10s for one request's work), WS_MAX_IN_FLIGHT (8
	// requests of one socket worked on at once), WS_MAX_SNAPSHOTS (4
	// snapshots built at once per instance), WS_CATCHUP_QUERIES (4
	// catch-up queries at once per instance; more reads are grouped).
	WSMaxFrameBytes     int64
	WSFrameRate         float64
	WSFrameBurst        int
	WSMaxSocketsPerUser int
	WSSendQueueBytes    int
	WSPingInterval      time.Duration
	WSPongTimeout       time.Duration
	WSWriteTimeout      time.Duration
	WSRequestTimeout    time.Duration
	WSMaxInFlight       int
	WSMaxSnapshots      int
	WSCatchupQueries    int
	// PRESENCE_TTL (default 60s): a device vanishes from presence this long
	// after its instance stopped refreshing it.
	PresenceTTL time.Duration

	// EVENT_RETENTION (default 168h): how long change events are kept for
	// resuming sockets; older resumes get a snapshot. Idempotency results
	// are kept for IDEMPOTENCY_RETENTION (default 24h). Pruning runs every
	// PRUNE_INTERVAL (default 10m).
	EventRetention       time.Duration
	IdempotencyRetention time.Duration
	PruneInterval        time.Duration

	// REMINDER_POLL_INTERVAL (default 1s): how often an instance looks for
	// reminder jobs that became due (River's FetchPollInterval; River's
	// scheduler makes scheduled jobs available every 5s, so a reminder fires
	// up to about 6s after its time). REMINDER_WORKERS (default 10):
	// reminder jobs run at once per instance. Tests use 100ms.
	ReminderPollInterval time.Duration
	ReminderWorkers      int
	// reminderTestOnly: River without its staggered start (tests only; no
	// variable).
	reminderTestOnly bool

	// PPROF_ADDR: a loopback host:port serving net/http/pprof on its own
	// listener, for profiling (docs/BENCHMARKS.md). Empty: off.
	PprofAddr string
	// METRICS_ADDR: a host:port serving /metrics on its own listener, and
	// then only there, e.g. 127.0.0.1:9090 or a private network address
	// that Prometheus reaches and the internet does not. Empty: /metrics is
	// served on LISTEN_ADDR with the API, to anyone who can reach it (no
	// user data, but socket, request and process figures).
	MetricsAddr string

	// LOG_FORMAT text|json (default text), LOG_LEVEL debug|info|warn|error.
	LogFormat string
	LogLevel  slog.Level
	// SHUTDOWN_TIMEOUT (default 15s): how long in-flight requests may take
	// to finish after SIGTERM.
	ShutdownTimeout time.Duration
}

// ChatConfig is the assistant part of Config. With neither OPENAI_API_KEY
// nor OPENAI_BASE_URL set, the built-in offline assistant answers (it
// understands the seed's example commands and says how to configure a
// model).
type ChatConfig struct {
	// OPENAI_API_KEY: bearer key of the model endpoint (OpenAI: sk-...).
	// Local servers (Ollama, llama.cpp) need none: set OPENAI_BASE_URL only.
	OpenAIAPIKey string
	// OPENAI_BASE_URL: an OpenAI-compatible Chat Completions API, e.g.
	// http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM),
	// http://localhost:8080/v1 (llama.cpp server), a LiteLLM proxy. Empty
	// with a key set: https://api.openai.com/v1.
	OpenAIBaseURL string
	// OPENAI_MODEL (default gpt-4o-mini): the model name; it must support
	// tool calls (Ollama: llama3.1, qwen2.5 and the like).
	OpenAIModel string
	// CHAT_MODEL_RETRIES (default 1): retries of a model call that failed
	// before streaming began (connection refused, 429, 5xx).
	ModelRetries int
	// CHAT_MAX_ROUNDS (default 5): model calls per turn; the last one is
	// offered no tools, so it answers in text.
	MaxRounds int
	// CHAT_MODEL_TIMEOUT (default 60s): limit of each model call, streaming
	// included; past it the turn ends with chat.error model_timeout.
	ModelTimeout time.Duration
	// CHAT_HISTORY_MESSAGES (default 30): stored messages of the
	// conversation shown to the model (the window), the new one included.
	HistoryMessages int
	// CHAT_MAX_TURNS_PER_USER (default 3): answers being written at once for
	// one user on one instance; more are refused with rate_limited.
	MaxTurnsPerUser int
	// CHAT_MAX_TURNS (default 64): answers being written at once on one
	// instance; more are refused with unavailable.
	MaxTurns int
}

// AuthConfig is the token verification part of Config.
type AuthConfig struct {
	// AUTH_JWT_SECRET (alias BETTER_AUTH_SECRET): HS256 shared secret, at
	// least 32 bytes.
	Secret string
	// AUTH_JWKS_URL: JWKS endpoint, e.g. https://app.example.com/api/auth/jwks.
	JWKSURL string
	// AUTH_ISSUER, AUTH_AUDIENCE: required iss / aud when set.
	Issuer, Audience string
	// AUTH_LEEWAY (default 30s): clock skew allowed on exp and nbf.
	Leeway time.Duration
}

// env reads variables through a lookup function (os.LookupEnv in main,
// a map in tests) and keeps the first error.
type env struct {
	lookup func(string) (string, bool)
	err    error
}

func (e *env) fail(name, format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
}

func (e *env) str(name, def string) string {
	if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (e *env) integer(name string, def, min, max int64) int64 {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		e.fail(name, "must be a whole number from %d to %d, got %q", min, max, s)
		return def
	}
	return n
}

func (e *env) duration(name string, def, min, max time.Duration) time.Duration {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min || d > max {
		e.fail(name, "must be a duration from %s to %s such as 30s or 5m, got %q", min, max, s)
		return def
	}
	return d
}

func (e *env) boolean(name string, def bool) bool {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		e.fail(name, "must be true or false, got %q", s)
		return def
	}
	return b
}

func (e *env) list(name string) []string {
	var out []string
	for _, s := range strings.Split(e.str(name, ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (e *env) postgresURL(name, def string, required bool) string {
	s := e.str(name, def)
	if s == "" {
		if required {
			e.fail(name, "is required, e.g. postgres://user@127.0.0.1:5432/tasksync?sslmode=disable")
		}
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		e.fail(name, "must be a postgres:// URL")
	}
	return s
}

// loadAuth reads the auth settings; the token sub-command needs only these.
func loadAuth(e *env) AuthConfig {
	a := AuthConfig{
		Secret:   e.str("AUTH_JWT_SECRET", e.str("BETTER_AUTH_SECRET", "")),
		JWKSURL:  e.str("AUTH_JWKS_URL", ""),
		Issuer:   e.str("AUTH_ISSUER", ""),
		Audience: e.str("AUTH_AUDIENCE", ""),
		Leeway:   e.duration("AUTH_LEEWAY", 30*time.Second, 0, 10*time.Minute),
	}
	if a.Secret != "" && len(a.Secret) < 32 {
		e.fail("AUTH_JWT_SECRET", "must be at least 32 bytes (generate one with: openssl rand -base64 32)")
	}
	if a.JWKSURL != "" {
		if u, err := url.Parse(a.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			e.fail("AUTH_JWKS_URL", "must be an http(s) URL such as https://app.example.com/api/auth/jwks")
		}
	}
	return a
}

// loadChat reads the assistant settings.
func loadChat(e *env) ChatConfig {
	c := ChatConfig{
		OpenAIAPIKey:    e.str("OPENAI_API_KEY", ""),
		OpenAIBaseURL:   e.str("OPENAI_BASE_URL", ""),
		OpenAIModel:     e.str("OPENAI_MODEL", "gpt-4o-mini"),
		ModelRetries:    int(e.integer("CHAT_MODEL_RETRIES", 1, 0, 5)),
		MaxRounds:       int(e.integer("CHAT_MAX_ROUNDS", chat.DefaultMaxRounds, 1, 20)),
		ModelTimeout:    e.duration("CHAT_MODEL_TIMEOUT", chat.DefaultModelTimeout, 100*time.Millisecond, 10*time.Minute),
		HistoryMessages: int(e.integer("CHAT_HISTORY_MESSAGES", chat.DefaultHistoryMessages, 1, 500)),
		MaxTurnsPerUser: int(e.integer("CHAT_MAX_TURNS_PER_USER", chat.DefaultMaxTurnsPerUser, 1, 100)),
		MaxTurns:        int(e.integer("CHAT_MAX_TURNS", chat.DefaultMaxTurns, 1, 100_000)),
	}
	if c.OpenAIBaseURL != "" {
		if u, err := url.Parse(c.OpenAIBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			e.fail("OPENAI_BASE_URL", "must be an http(s) URL such as http://localhost:11434/v1, got %q", c.OpenAIBaseURL)
		}
	}
	return c
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "tasksync"
	}
	return host + "-" + strings.ToLower(reqlog.NewID()[:6])
}

// loadLog reads LOG_FORMAT and LOG_LEVEL.
func loadLog(e *env) (format string, level slog.Level) {
	format = e.str("LOG_FORMAT", "text")
	switch format {
	case "text", "json":
	default:
		e.fail("LOG_FORMAT", "must be text or json, got %q", format)
	}
	if err := level.UnmarshalText([]byte(e.str("LOG_LEVEL", "info"))); err != nil {
		e.fail("LOG_LEVEL", "must be debug, info, warn or error")
	}
	return format, level
}

// loadMigrateConfig reads what `server migrate` needs: the database and
// the log settings. Migrations verify no token, so they need no auth
// secret, and the rest of the service's settings do not concern them.
func loadMigrateConfig(lookup func(string) (string, bool)) (Config, error) {
	e := &env{lookup: lookup}
	c := Config{DatabaseURL: e.postgresURL("DATABASE_URL", "", true)}
	c.LogFormat, c.LogLevel = loadLog(e)
	if e.err != nil {
		return Config{}, fmt.Errorf("config: %w", e.err)
	}
	return c, nil
}

func loadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := &env{lookup: lookup}
	c := Config{
		DatabaseURL:          e.postgresURL("DATABASE_URL", "", true),
		DatabaseMaxConns:     int(e.integer("DATABASE_MAX_CONNS", 16, 1, 1000)),
		WriteBatches:         int(e.integer("DATABASE_WRITE_BATCHES", tasks.DefaultMaxBatches, 1, 1000)),
		WriteBatchSize:       int(e.integer("DATABASE_WRITE_BATCH_SIZE", tasks.DefaultMaxBatch, 1, 10000)),
		RedisURL:             e.str("REDIS_URL", ""),
		ListenAddr:           e.str("LISTEN_ADDR", ":8080"),
		AutoMigrate:          e.boolean("AUTO_MIGRATE", true),
		Auth:                 loadAuth(e),
		Chat:                 loadChat(e),
		CORSAllowedOrigins:   e.list("CORS_ALLOWED_ORIGINS"),
		WSAllowedOrigins:     e.list("WS_ALLOWED_ORIGINS"),
		MaxBodyBytes:         e.integer("HTTP_MAX_BODY_BYTES", 64<<10, 1<<10, 16<<20),
		BodyTimeout:          e.duration("HTTP_BODY_TIMEOUT", httpjson.DefaultBodyTimeout, 10*time.Millisecond, time.Hour),
		APIRateLimit:         int(e.integer("API_RATE_LIMIT", 600, 1, 1_000_000)),
		APIRateWindow:        e.duration("API_RATE_WINDOW", time.Minute, time.Second, time.Hour),
		RedisPrefix:          e.str("REDIS_PREFIX", "tasksync"),
		InstanceID:           e.str("INSTANCE_ID", defaultInstanceID()),
		WSMaxFrameBytes:      e.integer("WS_MAX_FRAME_BYTES", realtime.DefaultMaxFrameBytes, 1<<10, 16<<20),
		WSFrameRate:          float64(e.integer("WS_FRAME_RATE", realtime.DefaultFrameRate, 1, 100_000)),
		WSFrameBurst:         int(e.integer("WS_FRAME_BURST", realtime.DefaultFrameBurst, 1, 100_000)),
		WSMaxSocketsPerUser:  int(e.integer("WS_MAX_SOCKETS_PER_USER", realtime.DefaultMaxSocketsPerUser, 1, 1_000_000)),
		WSSendQueueBytes:     int(e.integer("WS_SEND_QUEUE_BYTES", realtime.DefaultSendQueueBytes, 64<<10, 1<<30)),
		WSPingInterval:       e.duration("WS_PING_INTERVAL", realtime.DefaultPingInterval, 100*time.Millisecond, 10*time.Minute),
		WSPongTimeout:        e.duration("WS_PONG_TIMEOUT", realtime.DefaultPongTimeout, 100*time.Millisecond, 10*time.Minute),
		WSWriteTimeout:       e.duration("WS_WRITE_TIMEOUT", realtime.DefaultWriteTimeout, 100*time.Millisecond, 10*time.Minute),
		WSRequestTimeout:     e.duration("WS_REQUEST_TIMEOUT", realtime.DefaultRequestTimeout, 100*time.Millisecond, 10*time.Minute),
		WSMaxInFlight:        int(e.integer("WS_MAX_IN_FLIGHT", realtime.DefaultMaxInFlight, 1, 1000)),
		WSMaxSnapshots:       int(e.integer("WS_MAX_SNAPSHOTS", realtime.DefaultMaxSnapshots, 1, 1000)),
		WSCatchupQueries:     int(e.integer("WS_CATCHUP_QUERIES", realtime.DefaultCatchupQueries, 1, 1000)),
		PresenceTTL:          e.duration("PRESENCE_TTL", realtime.DefaultPresenceTTL, 3*time.Second, time.Hour),
		EventRetention:       e.duration("EVENT_RETENTION", 7*24*time.Hour, time.Minute, 365*24*time.Hour),
		IdempotencyRetention: e.duration("IDEMPOTENCY_RETENTION", 24*time.Hour, time.Minute, 30*24*time.Hour),
		PruneInterval:        e.duration("PRUNE_INTERVAL", 10*time.Minute, time.Second, 24*time.Hour),
		ShutdownTimeout:      e.duration("SHUTDOWN_TIMEOUT", 15*time.Second, 0, 10*time.Minute),
		ReminderPollInterval: e.duration("REMINDER_POLL_INTERVAL", reminders.DefaultFetchPollInterval, 10*time.Millisecond, time.Minute),
		ReminderWorkers:      int(e.integer("REMINDER_WORKERS", reminders.DefaultWorkers, 1, 1000)),
	}
	c.DatabaseListenURL = e.postgresURL("DATABASE_LISTEN_URL", c.DatabaseURL, false)
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			e.fail("REDIS_URL", "must be a redis:// or rediss:// URL")
		}
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		e.fail("LISTEN_ADDR", "must be host:port or :port, got %q", c.ListenAddr)
	}
	c.PprofAddr = e.str("PPROF_ADDR", "")
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			e.fail("PPROF_ADDR", "must be a loopback address such as 127.0.0.1:6060, got %q", c.PprofAddr)
		}
	}
	c.MetricsAddr = e.str("METRICS_ADDR", "")
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			e.fail("METRICS_ADDR", "must be host:port such as 127.0.0.1:9090, got %q", c.MetricsAddr)
		}
	}
	if c.Auth.Secret == "" && c.Auth.JWKSURL == "" {
		e.fail("AUTH_JWT_SECRET", "or AUTH_JWKS_URL (or BETTER_AUTH_SECRET) must be set: without one no token can be verified")
	}
	for _, o := range c.CORSAllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			e.fail("CORS_ALLOWED_ORIGINS", "%q is not an origin like https://app.example.com", o)
		}
	}
	if len(c.WSAllowedOrigins) == 0 {
		for _, o := range c.CORSAllowedOrigins {
			if u, err := url.Parse(o); err == nil {
				c.WSAllowedOrigins = append(c.WSAllowedOrigins, u.Host)
			}
		}
	}
	c.LogFormat, c.LogLevel = loadLog(e)
	if e.err != nil {
		return Config{}, fmt.Errorf("config: %w", e.err)
	}
	return c, nil
}
