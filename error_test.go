package tasksync_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"tasksync"
	"tasksync/internal/testdb"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func wantCode(t *testing.T, what string, err error, want tasksync.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if got := tasksync.AsError(err).Code; got != want {
		t.Errorf("%s: %v classified %s, want %s", what, err, got, want)
	}
	if got := tasksync.ErrorCode(err); got != want {
		t.Errorf("%s: ErrorCode %s, want %s", what, got, want)
	}
	level, logged := tasksync.LogLevel(err)
	switch want {
	case tasksync.CodeUnavailable:
		if !logged || level != slog.LevelWarn {
			t.Errorf("%s: logged %v at %v, want WARN", what, logged, level)
		}
	case tasksync.CodeInternal:
		if !logged || level != slog.LevelError {
			t.Errorf("%s: logged %v at %v, want ERROR", what, logged, level)
		}
	}
}

// Errors that pgx really returns when Postgres is unreachable, restarting
// or slow are outages (unavailable, WARN); errors of the statement are
// bugs (internal, ERROR).
func TestAsErrorClassifiesRealDriverErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Nothing listens: a *pgconn.ConnectError around ECONNREFUSED.
	_, err := pgconn.Connect(ctx, "postgres://postgres@"+closedPort(t)+"/x?sslmode=disable&connect_timeout=5")
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("connect to a closed port: %T %v, want *pgconn.ConnectError", err, err)
	}
	wantCode(t, "connection refused", fmt.Errorf("list tasks: %w", err), tasksync.CodeUnavailable)

	conn, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", testdb.AdminURL(), err)
	}
	defer conn.Close(context.Background())

	// A statement that outlives its context.
	sctx, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = conn.Exec(sctx, "SELECT pg_sleep(10)")
	scancel()
	wantCode(t, "timeout", err, tasksync.CodeUnavailable)
	if msg := tasksync.AsError(err).Message; msg == "" || msg == "internal error" {
		t.Errorf("timeout message %q", msg)
	}

	// statement_timeout: 57014 from the server.
	conn2, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(context.Background())
	if _, err := conn2.Exec(ctx, "SET statement_timeout = '20ms'"); err != nil {
		t.Fatal(err)
	}
	_, err = conn2.Exec(ctx, "SELECT pg_sleep(10)")
	wantCode(t, "statement_timeout", err, tasksync.CodeUnavailable)

	// Bugs and bad input stay internal: an unknown table, a NUL in text.
	_, err = conn2.Exec(ctx, "SELECT * FROM no_such_table")
	wantCode(t, "undefined table", err, tasksync.CodeInternal)
	_, err = conn2.Exec(ctx, "SELECT $1::text", "a\x00b")
	wantCode(t, "NUL in text", err, tasksync.CodeInternal)

	// A backend terminated under us (what a Postgres restart does to every
	// connection): 57P01, then the connection is closed.
	victim, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close(context.Background())
	pid := victim.PgConn().PID()
	if _, err := conn2.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn2.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = victim.Exec(ctx, "SELECT 1")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code != "57P01" {
		t.Fatalf("terminated backend: %v, want 57P01 or a broken connection", err)
	}
	wantCode(t, "terminated backend", err, tasksync.CodeUnavailable)
	_, err = victim.Exec(ctx, "SELECT 1")
	wantCode(t, "closed connection", err, tasksync.CodeUnavailable)
}

func TestAsErrorClassifiesByKind(t *testing.T) {
	t.Parallel()
	_, dialErr := net.Dial("tcp", closedPort(t))
	cases := []struct {
		what string
		err  error
		want tasksync.Code
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, tasksync.CodeUnavailable},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, tasksync.CodeUnavailable},
		{"starting up", &pgconn.PgError{Code: "57P03"}, tasksync.CodeUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, tasksync.CodeUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, tasksync.CodeUnavailable},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, tasksync.CodeUnavailable},
		{"unique violation", &pgconn.PgError{Code: "23505"}, tasksync.CodeInternal},
		{"syntax error", &pgconn.PgError{Code: "42601"}, tasksync.CodeInternal},
		{"deadline", fmt.Errorf("fetch: %w", context.DeadlineExceeded), tasksync.CodeUnavailable},
		{"cancelled", context.Canceled, tasksync.CodeUnavailable},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), tasksync.CodeUnavailable},
		{"dial error", dialErr, tasksync.CodeUnavailable},
		{"conn closed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), tasksync.CodeUnavailable},
		{"plain bug", errors.New("nil map"), tasksync.CodeInternal},
	}
	for _, c := range cases {
		wantCode(t, c.what, fmt.Errorf("wrapped: %w", c.err), c.want)
	}

	// An *Error is shown as it is and not logged, even when it wraps
	// nothing; an internal one is logged at ERROR.
	e := tasksync.Errorf(tasksync.CodeNotFound, "task 7 not found")
	if got := tasksync.AsError(fmt.Errorf("get: %w", e)); got != e {
		t.Errorf("AsError(*Error) = %v", got)
	}
	if _, logged := tasksync.LogLevel(e); logged {
		t.Error("a not_found is logged")
	}
	if level, logged := tasksync.LogLevel(tasksync.Errorf(tasksync.CodeInternal, "x")); !logged || level != slog.LevelError {
		t.Error("an explicit internal error is not logged at ERROR")
	}
	if tasksync.Transient(nil) {
		t.Error("nil is transient")
	}
}
