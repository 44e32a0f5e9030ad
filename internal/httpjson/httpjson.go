// Package httpjson reads JSON request bodies with the service's limits and
// writes JSON responses, including the one error body shape:
//
//	{"error":{"code":"...","message":"...","fields":{...}}}
//
// It also bounds how long a request body may take to arrive ([BodyDeadline]).
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"

	"tasksync"
	"tasksync/internal/reqlog"
)

// DefaultMaxBody is the body size limit used when a handler passes 0.
const DefaultMaxBody = 64 << 10

// ErrEmptyBody is returned by [Read] for a request without a body.
var ErrEmptyBody = tasksync.Errorf(tasksync.CodeBadRequest, "the body is empty; a JSON object is expected")

// Read decodes the JSON body of r into dst. It answers the usual questions
// with *tasksync.Error values: a body over maxBytes (413), a non-empty body
// that is not declared JSON (415), no body at all ([ErrEmptyBody]),
// malformed JSON or trailing data (400), a value of the wrong type for a
// field (422 naming the field). Unknown fields are ignored so that older
// and newer clients keep working. The body is read whole first (it is
// bounded), so that chunked bodies get the same checks as sized ones.
func Read(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(maxBytes)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return tasksync.Errorf(tasksync.CodeBadRequest, "the body did not arrive in time")
		}
		return tasksync.Errorf(tasksync.CodeBadRequest, "the body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return ErrEmptyBody
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return tasksync.Errorf(tasksync.CodeUnsupportedMedia, "the body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return tasksync.Errorf(tasksync.CodeBadRequest, "the body must hold exactly one JSON value")
	}
	return nil
}

func tooLarge(maxBytes int64) error {
	return tasksync.Errorf(tasksync.CodeTooLarge, "the body is larger than %d bytes", maxBytes)
}

// decodeError turns encoding/json errors into safe, precise client errors.
func decodeError(err error, maxBytes int64) error {
	var (
		mbe    *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		appErr *tasksync.Error
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(maxBytes)
	case errors.As(err, &appErr):
		return appErr
	case errors.Is(err, io.EOF):
		return tasksync.Errorf(tasksync.CodeBadRequest, "the body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tasksync.Errorf(tasksync.CodeBadRequest, "the body is not valid JSON: unexpected end")
	case errors.As(err, &syntax):
		return tasksync.Errorf(tasksync.CodeBadRequest, "the body is not valid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return tasksync.Errorf(tasksync.CodeBadRequest, "the body must be a JSON object")
		}
		return tasksync.Invalid(map[string]string{typ.Field: fmt.Sprintf("must be %s", jsonKind(typ.Type.Kind().String()))})
	default:
		return tasksync.Errorf(tasksync.CodeBadRequest, "the body could not be read as JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	default:
		return "of another type"
	}
}

// Write writes v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of [ErrorBody].
type ErrorDetail struct {
	Code    tasksync.Code     `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	Current any               `json:"current,omitempty"`
}

// RetryAfterUnavailable is the Retry-After (in seconds) of a 503 that does
// not set its own: long enough for a restarting Postgres or a failover to
// answer again, short enough that clients do not idle.
const RetryAfterUnavailable = 2

// WriteError writes err in the one error shape with the status of its code,
// classified by [tasksync.AsError]. Errors that are not *tasksync.Error are
// logged with the request's logger at the level of [tasksync.LogLevel]
// (ERROR for a bug, shown as "internal error"; WARN for a dependency
// outage, shown as unavailable). A 503 carries Retry-After.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := tasksync.AsError(err)
	if level, ok := tasksync.LogLevel(err); ok {
		reqlog.Logger(r.Context()).Log(r.Context(), level, "request failed", "code", e.Code, "err", err)
	}
	if e.Code == tasksync.CodeUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterUnavailable))
	}
	Write(w, tasksync.HTTPStatus(e.Code), ErrorBody{Error: ErrorDetail{
		Code: e.Code, Message: e.Message, Fields: e.Fields, Current: e.Current,
	}})
}

// Routes wraps mux so that requests no route matches get the JSON error
// shape (404 not_found, or 405 method_not_allowed with Allow) instead of
// ServeMux's plain-text answers.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Let the mux decide between 404, 405 and redirects, then
		// replace its body with ours.
		probe := &statusProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			WriteError(w, r, tasksync.Errorf(tasksync.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		case http.StatusNotFound:
			WriteError(w, r, tasksync.Errorf(tasksync.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// statusProbe records what a handler would answer, writing nothing.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
