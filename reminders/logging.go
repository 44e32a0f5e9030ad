package reminders

import (
	"context"
	"log/slog"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"tasksync"
)

// Logging follows the project's rule (tasksync.LogLevel): ERROR for bugs,
// someone must look; WARN for outages, which ring the dependency's alarm.
//
// River logs the failures of its own loops (fetching jobs, leader
// election, maintenance) at ERROR, as text: during a Postgres restart every
// instance logs a dozen. River retries those loops itself and loses
// nothing, so riverLogHandler logs them at WARN; only panics keep ERROR.
// A reminder job's own failure comes with its error value to errorHandler,
// which logs it at the level tasksync.LogLevel gives it.

// riverLogHandler is River's slog.Handler: ours, with River's ERROR
// records other than panics at WARN.
type riverLogHandler struct{ slog.Handler }

func (h riverLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && !strings.Contains(strings.ToLower(r.Message), "panic") {
		r.Level = slog.LevelWarn
	}
	return h.Handler.Handle(ctx, r)
}

func (h riverLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return riverLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h riverLogHandler) WithGroup(name string) slog.Handler {
	return riverLogHandler{h.Handler.WithGroup(name)}
}

// errorHandler logs a failed attempt of a reminder job; River retries it
// (Args.InsertOpts: MaxAttempts).
type errorHandler struct{ log *slog.Logger }

func (h errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	level, _ := tasksync.LogLevel(err)
	h.log.Log(ctx, level, "reminder job failed; River retries it", "job", job.ID, "attempt", job.Attempt, "err", err)
	return nil
}

func (h errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	h.log.ErrorContext(ctx, "reminder job panicked; River retries it", "job", job.ID, "attempt", job.Attempt, "panic", panicVal, "stack", trace)
	return nil
}
