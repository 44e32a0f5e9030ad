package reminders

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river/rivertype"
)

// River's loop failures (retried by River) log at WARN, its panics at
// ERROR; a job's own failure at the level its error deserves.
func TestLogLevels(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	river := slog.New(riverLogHandler{base.Handler()}).With("component", "river")
	river.Error("producer: Error fetching jobs", "err", "failed to connect")
	river.Error("jobexecutor: panic recovery; possible bug with Worker")
	river.Info("elected leader")
	jobs := errorHandler{log: base}
	row := &rivertype.JobRow{ID: 7, Attempt: 1}
	jobs.HandleError(context.Background(), row, &pgconn.ConnectError{})
	jobs.HandleError(context.Background(), row, errors.New("a bug"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"level=WARN", "level=ERROR", "level=INFO", "level=WARN", "level=ERROR"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q, want %s", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], "component=river") {
		t.Errorf("attributes lost: %q", lines[0])
	}
}
