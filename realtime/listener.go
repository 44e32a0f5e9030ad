package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// NotifyChannel is the channel the change-log trigger notifies on. A
// payload has one of two forms (see [parseNotification]):
//
//   - inline, the event itself, when it fits in InlineNotifyMax bytes:
//     "e<seq>:<user id length>:<user id>:<op>:<task id>:<created_at, unix µs>:<task JSON>"
//     (the task JSON is empty for deletes). An instance hands it to the
//     user's sessions without reading the log, if it follows the last
//     event it dispatched for that user.
//   - a pointer into the log, "<seq>:<user id>": for bigger events, and
//     the only form before migration 00007, so payloads of an older
//     trigger keep working.
//
// The log stays the source of truth either way: a notification whose seq
// does not follow the user's last dispatched one makes the hub read the
// log from there, and every (re)connect reads it for every user.
const NotifyChannel = "tasksync_events"

// InlineNotifyMax is the largest payload the trigger sends inline
// (migrations/00007): well under Postgres' 8000-byte limit.
const InlineNotifyMax = 7000

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

// HandleNotification parses a payload and tells the hub.
func (l *Listener) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	user, seq, body, inline, err := parseNotification(n.Payload)
	if err != nil {
		return err
	}
	if inline {
		l.Hub.notifyInline(user, seq, body)
	} else {
		l.Hub.notify(user, seq)
	}
	return nil
}

// parseNotification reads the seq and user of a payload of either form
// (see [NotifyChannel]); for the inline form, body is what follows the user
// id, decoded by [decodeInline] only when a session here wants the event.
func parseNotification(p string) (user string, seq int64, body string, inline bool, err error) {
	bad := func() (string, int64, string, bool, error) {
		return "", 0, "", false, fmt.Errorf("bad notification payload %.80q", p)
	}
	if !strings.HasPrefix(p, "e") {
		seqStr, user, ok := strings.Cut(p, ":")
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if !ok || err != nil || seq <= 0 || user == "" {
			return bad()
		}
		return user, seq, "", false, nil
	}
	seqStr, rest, ok := strings.Cut(p[1:], ":")
	lenStr, rest, ok2 := strings.Cut(rest, ":")
	seq, err1 := strconv.ParseInt(seqStr, 10, 64)
	n, err2 := strconv.Atoi(lenStr)
	if !ok || !ok2 || err1 != nil || err2 != nil || seq <= 0 || n <= 0 || n >= len(rest) || rest[n] != ':' {
		return bad()
	}
	return rest[:n], seq, rest[n+1:], true, nil
}

// decodeInline builds the event of an inline payload from its body,
// "<op>:<task id>:<created_at, unix µs>:<task JSON>", with its frame
// encoded (the JSON checked) once.
func decodeInline(user string, seq int64, body string) (*Event, error) {
	op, rest, ok1 := strings.Cut(body, ":")
	idStr, rest, ok2 := strings.Cut(rest, ":")
	atStr, task, ok3 := strings.Cut(rest, ":")
	id, err1 := strconv.ParseInt(idStr, 10, 64)
	at, err2 := strconv.ParseInt(atStr, 10, 64)
	if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("bad inline event %s/%d", user, seq)
	}
	e := &Event{UserID: user, Seq: seq, TaskID: id, CreatedAt: time.UnixMicro(at)}
	switch op {
	case "created", "updated":
		if task == "" {
			return nil, fmt.Errorf("inline event %s/%d: %s without a task", user, seq, op)
		}
		e.Task = json.RawMessage(task)
	case "deleted":
		if task != "" {
			return nil, fmt.Errorf("inline event %s/%d: deleted with a task", user, seq)
		}
	default:
		return nil, fmt.Errorf("inline event %s/%d: unknown op %.20q", user, seq, op)
	}
	e.Op = op
	frame, err := encodeEvent(e)
	if err != nil {
		return nil, err
	}
	e.frame = frame
	return e, nil
}
