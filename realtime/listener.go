package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// NotifyChannel is the channel the change-log trigger notifies on; the
// payload is "<seq>:<user id>", a pointer into the log, never the task.
const NotifyChannel = "tasksync_events"

// Listener holds this instance's one LISTEN connection. It uses
// jackc/pgxlisten, which LISTENs first and then calls HandleBacklog, so
// nothing committed between a disconnect and the new LISTEN is missed: the
// backlog step makes the hub re-read the log for every user it serves.
type Listener struct {
	// URL is a direct (not transaction-pooled) Postgres URL.
	URL    string
	Hub    *Hub
	Logger *slog.Logger
	// Handlers are more channels to LISTEN on over the same connection
	// (auth's revocations); one that is a pgxlisten.BacklogHandler is
	// called after every (re)LISTEN too.
	Handlers map[string]pgxlisten.Handler

	connects   int
	listenedAt time.Time
	backoff    *backoff
}

// Run listens until ctx ends, reconnecting forever with exponential backoff
// and jitter.
func (l *Listener) Run(ctx context.Context) error {
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	l.backoff = newBackoff(100*time.Millisecond, 10*time.Second)
	pl := &pgxlisten.Listener{
		Connect: l.connect,
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				l.Logger.Warn("listen", "err", err)
			}
		},
		ReconnectDelay: -1, // connect applies the backoff
	}
	pl.Handle(NotifyChannel, l)
	for ch, h := range l.Handlers {
		pl.Handle(ch, h)
	}
	return pl.Listen(ctx)
}

func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	if l.connects > 0 {
		// A connection that lived a while was healthy: start over from
		// the smallest delay.
		if time.Since(l.listenedAt) > time.Minute {
			l.backoff.reset()
		}
		if !l.backoff.wait(ctx) {
			return nil, ctx.Err()
		}
		l.Hub.metrics.listenReconnects.Inc()
	}
	l.connects++
	cfg, err := pgx.ParseConfig(l.URL)
	if err != nil {
		return nil, fmt.Errorf("parse listen URL: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "tasksync-listener"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.ConnectConfig(cctx, cfg)
}

// HandleBacklog runs after every successful LISTEN.
func (l *Listener) HandleBacklog(ctx context.Context, _ string, _ *pgx.Conn) error {
	l.listenedAt = time.Now()
	if l.connects > 1 {
		l.Logger.Info("listen: reconnected; catching up from the change log")
	}
	l.Hub.pokeAll()
	return nil
}

// HandleNotification parses the pointer and tells the hub.
func (l *Listener) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	seqStr, user, ok := strings.Cut(n.Payload, ":")
	seq, err := strconv.ParseInt(seqStr, 10, 64)
	if !ok || err != nil || user == "" {
		return fmt.Errorf("bad notification payload %q", n.Payload)
	}
	l.Hub.notify(user, seq)
	return nil
}
