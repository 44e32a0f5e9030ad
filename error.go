// Package tasksync holds what every other package of the service shares: the
// application error type, its codes, and the one classification of other
// errors ([AsError]: a dependency outage is CodeUnavailable, anything else
// CodeInternal). It imports nothing of the project.
package tasksync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Code classifies an error for clients. Codes are stable API: they appear in
// REST error bodies and in socket error frames (docs/PROTOCOL.md).
type Code string

// Error codes. The HTTP status of each is in [HTTPStatus]; what a client
// should do on each is in docs/PROTOCOL.md.
const (
	CodeBadRequest       Code = "bad_request"        // malformed request: syntax, bad query parameter
	CodeInvalid          Code = "invalid"            // well-formed but fails validation; see Fields
	CodeUnauthorized     Code = "unauthorized"       // missing, malformed, expired or unverifiable token
	CodeForbidden        Code = "forbidden"          // authenticated, but not allowed (another user's path)
	CodeNotFound         Code = "not_found"          // no such resource for this user
	CodeMethodNotAllowed Code = "method_not_allowed" // route exists, method does not
	CodeConflict         Code = "conflict"           // state conflict, e.g. an idempotency key reused for another request
	CodeVersionMismatch  Code = "version_mismatch"   // If-Match / base_version is stale; the current task is attached
	CodeTooLarge         Code = "too_large"          // body or frame over the size limit
	CodeUnsupportedMedia Code = "unsupported_media"  // body is not JSON
	CodeRateLimited      Code = "rate_limited"       // slow down and retry later
	CodeUnavailable      Code = "unavailable"        // a dependency is down or timed out, or the server is shutting down; retry
	CodeInternal         Code = "internal"           // a bug; details are only in the server log
)

// HTTPStatus is the one place where error codes become HTTP status codes.
func HTTPStatus(code Code) int {
	switch code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeInvalid:
		return http.StatusUnprocessableEntity
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodeVersionMismatch:
		return http.StatusPreconditionFailed
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error whose Code and Message are safe to show to the client.
// Anything that is not an *Error is shown through [AsError]: as
// CodeUnavailable when a dependency failed, as CodeInternal otherwise; its
// details are only logged.
type Error struct {
	Code    Code
	Message string
	// Fields holds per-field messages for CodeInvalid, keyed by the JSON name
	// of the field.
	Fields map[string]string
	// Current is attached to CodeVersionMismatch: the resource as it is now,
	// so that the client can merge instead of refetching.
	Current any
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a CodeInvalid error with per-field messages.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: CodeInvalid, Message: "the request has invalid fields", Fields: fields}
}

// ErrorCode returns the code [AsError] gives err.
func ErrorCode(err error) Code {
	return AsError(err).Code
}

// AsError returns err as an *Error that is safe to show: err itself if it is
// (or wraps) one; a CodeUnavailable error if err is a dependency failure that
// a retry may cure ([Transient]); a generic CodeInternal error otherwise, so
// that internal stays the code of bugs. REST (httpjson.WriteError), socket
// error frames, chat turns and tool results all classify through here.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if Transient(err) {
		if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
			return &Error{Code: CodeUnavailable, Message: "the request timed out; retry it (a change with the same Idempotency-Key or mutation_id is applied once)"}
		}
		return &Error{Code: CodeUnavailable, Message: "a dependency of the service is unavailable; retry it (a change with the same Idempotency-Key or mutation_id is applied once)"}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

// LogLevel says how a request that failed with err is logged: at
// slog.LevelError when [AsError] makes it CodeInternal (a bug: someone must
// look), at slog.LevelWarn when it is a dependency failure that AsError
// turned into CodeUnavailable (an outage shows as many of these, and it is
// the dependency's alarm that should ring; also when an unavailable *Error
// wraps such a failure). ok is false for other *Error values: the client's
// mistake or a refusal the code chose, which is not logged.
func LogLevel(err error) (level slog.Level, ok bool) {
	var e *Error
	switch {
	case errors.As(err, &e):
		if e.Code == CodeUnavailable && Transient(err) {
			return slog.LevelWarn, true // an outage the code turned into a safe answer
		}
		return slog.LevelError, e.Code == CodeInternal
	case Transient(err):
		return slog.LevelWarn, true
	default:
		return slog.LevelError, true
	}
}

// Transient reports whether err is a failure of a dependency (Postgres,
// Redis, the model endpoint) rather than of the request or the code: a
// timeout or cancellation, a connection that could not be made or broke
// (connect errors, network errors, EOF mid-conversation), or Postgres
// refusing work while it starts, shuts down or runs out of connections
// (SQLSTATE class 08, 53, 57P01-57P03), a statement cancelled by
// statement_timeout (57014), or a serialization failure or deadlock
// (40001, 40P01) that outlived the writer's own retries. The request may
// succeed if sent again.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // whatever the server said: it did not let us in
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	if errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// transientSQLState reports whether a Postgres error code means "not now"
// rather than "not this" (a constraint, a type, a syntax error: those are
// bugs or the client's).
func transientSQLState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources: too many connections, disk full, out of memory
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03": // admin shutdown, crash shutdown, cannot connect now (starting up)
		return true
	case "57014": // query_canceled: statement_timeout or a cancel request
		return true
	case "40001", "40P01": // serialization failure, deadlock detected
		return true
	}
	return false
}
