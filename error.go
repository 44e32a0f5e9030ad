// Package tasksync holds what every other package of the service shares: the
// application error type and its codes. It imports nothing of the project.
package tasksync

import (
	"errors"
	"fmt"
	"net/http"
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
	CodeUnavailable      Code = "unavailable"        // a dependency is down or the server is shutting down; retry
	CodeInternal         Code = "internal"           // a bug or an unexpected failure; details are only in the server log
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
// Anything that is not an *Error is reported to clients as CodeInternal and
// only logged.
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

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// CodeInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err as an *Error that is safe to show: err itself if it is
// (or wraps) one, and a generic CodeInternal error otherwise.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}
