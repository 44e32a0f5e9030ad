package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"tasksync"
	"tasksync/internal/httpjson"
)

// PathUserParam is the path wildcard [RequirePathUser] compares with the
// caller: routes look like "GET /api/{user_id}/tasks".
const PathUserParam = "user_id"

// realm is the WWW-Authenticate realm of every 401.
const realm = `Bearer realm="tasksync"`

type ctxKey struct{}

// WithIdentity returns a copy of ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity [Middleware] (or [WithIdentity]) put into
// ctx; ok is false when there is none.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Caller returns the authenticated user of r, or a CodeUnauthorized error
// when no identity is in the context. Handlers take the user from here,
// never from the path: the path was only checked against it.
func Caller(r *http.Request) (string, error) {
	id, ok := FromContext(r.Context())
	if !ok || id.UserID == "" {
		return "", tasksync.Errorf(tasksync.CodeUnauthorized, "missing bearer token")
	}
	return id.UserID, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header. The scheme is case-insensitive (RFC 9110 11.1); ok is false when
// the header is absent, has another scheme or an empty token. Tokens in
// query strings are not looked at.
func BearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Middleware verifies the request's bearer token with v and puts the
// [Identity] into the request context for the next handler.
//
// Without a bearer token it answers 401 "missing bearer token" with
// `WWW-Authenticate: Bearer realm="tasksync"`; with a token v rejects, 401
// with the verifier's safe message, repeated in the header's
// error_description (RFC 6750 3). A verifier error that is not a
// *tasksync.Error is logged and answered as 500. Preflight (OPTIONS)
// requests are CORS's business and must be answered before this runs.
func Middleware(v TokenVerifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := BearerToken(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", realm)
				httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeUnauthorized, "missing bearer token"))
				return
			}
			id, err := v.Verify(r.Context(), raw)
			if err != nil {
				var e *tasksync.Error
				if errors.As(err, &e) && e.Code == tasksync.CodeUnauthorized {
					w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token", error_description="`+quotable(e.Message)+`"`)
				}
				httpjson.WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		})
	}
}

// RequirePathUser lets a request through only when the {user_id} path
// wildcard equals the caller's user id, and answers 403 "this token belongs
// to another user" otherwise. It must run after [Middleware] on a route
// with a {user_id} wildcard; a request without an identity or without the
// wildcard is a wiring bug, answered as 500 and logged.
func RequirePathUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := FromContext(r.Context())
		if !ok {
			httpjson.WriteError(w, r, errors.New("auth.RequirePathUser: no identity in the context; is auth.Middleware in front of it?"))
			return
		}
		pathUser := r.PathValue(PathUserParam)
		if pathUser == "" {
			httpjson.WriteError(w, r, errors.New("auth.RequirePathUser: the route has no {user_id} wildcard"))
			return
		}
		if pathUser != id.UserID {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeForbidden, "this token belongs to another user"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// quotable keeps only characters that are safe inside a quoted-string of
// an auth-param (RFC 6750 3: %x20-21 / %x23-5B / %x5D-7E).
func quotable(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return -1
		}
		return c
	}, s)
}
