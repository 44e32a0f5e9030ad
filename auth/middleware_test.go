package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"tasksync"
	"tasksync/auth"
	"tasksync/internal/httpjson"
	"tasksync/internal/reqlog"
)

// reqlogContext returns ctx with a debug-level request logger writing to w.
func reqlogContext(ctx context.Context, w io.Writer) context.Context {
	return reqlog.WithLogger(ctx, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// echoUser answers 200 with the caller's user id.
var echoUser = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		http.Error(w, "no identity", http.StatusTeapot)
		return
	}
	_, _ = io.WriteString(w, id.UserID)
})

// verifierFunc adapts a function to auth.TokenVerifier.
type verifierFunc func(ctx context.Context, raw string) (auth.Identity, error)

func (f verifierFunc) Verify(ctx context.Context, raw string) (auth.Identity, error) {
	return f(ctx, raw)
}

func decodeError(t *testing.T, body string) httpjson.ErrorDetail {
	t.Helper()
	var b httpjson.ErrorBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return b.Error
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: secret})
	valid := signHS256(t, secret, "", claimsFor("user-1"))
	expired := signHS256(t, secret, "", jwt.MapClaims{"sub": "user-1", "exp": t0.Add(-time.Hour).Unix()})
	const missing = `Bearer realm="tasksync"`

	tests := []struct {
		name       string
		auth       []string // Authorization header values
		wantStatus int
		wantUser   string // body on success
		wantMsg    string // error message otherwise
		wantHeader string // WWW-Authenticate
	}{
		{name: "valid", auth: []string{"Bearer " + valid}, wantStatus: 200, wantUser: "user-1"},
		{name: "scheme is case-insensitive", auth: []string{"bEaReR " + valid}, wantStatus: 200, wantUser: "user-1"},
		{name: "extra spaces", auth: []string{"Bearer   " + valid + " "}, wantStatus: 200, wantUser: "user-1"},
		{name: "no header", wantStatus: 401, wantMsg: "missing bearer token", wantHeader: missing},
		{name: "empty header", auth: []string{""}, wantStatus: 401, wantMsg: "missing bearer token", wantHeader: missing},
		{name: "Basic scheme", auth: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401, wantMsg: "missing bearer token", wantHeader: missing},
		{name: "Bearer without token", auth: []string{"Bearer"}, wantStatus: 401, wantMsg: "missing bearer token", wantHeader: missing},
		{name: "Bearer with blank token", auth: []string{"Bearer    "}, wantStatus: 401, wantMsg: "missing bearer token", wantHeader: missing},
		{name: "token without scheme", auth: []string{valid}, wantStatus: 401, wantMsg: "missing bearer token", wantHeader: missing},
		{
			name: "expired", auth: []string{"Bearer " + expired}, wantStatus: 401, wantMsg: "token expired",
			wantHeader: `Bearer realm="tasksync", error="invalid_token", error_description="token expired"`,
		},
		{
			name: "garbage", auth: []string{"Bearer not-a-jwt"}, wantStatus: 401, wantMsg: "malformed token",
			wantHeader: `Bearer realm="tasksync", error="invalid_token", error_description="malformed token"`,
		},
		{
			name: "only the first header counts", auth: []string{"Bearer not-a-jwt", "Bearer " + valid}, wantStatus: 401, wantMsg: "malformed token",
			wantHeader: `Bearer realm="tasksync", error="invalid_token", error_description="malformed token"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			r := httptest.NewRequestWithContext(reqlogContext(t.Context(), &logs), http.MethodGet, "/api/user-1/tasks", nil)
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			auth.Middleware(v)(echoUser).ServeHTTP(w, r)

			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wantHeader {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantHeader)
			}
			if tt.wantStatus == 200 {
				if w.Body.String() != tt.wantUser {
					t.Errorf("user %q, want %q", w.Body, tt.wantUser)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			e := decodeError(t, w.Body.String())
			if e.Code != tasksync.CodeUnauthorized || e.Message != tt.wantMsg {
				t.Errorf("error %+v, want %s %q", e, tasksync.CodeUnauthorized, tt.wantMsg)
			}
			for _, tok := range []string{valid, expired} {
				assertNoToken(t, w.Body.String(), tok)
				assertNoToken(t, w.Header().Get("WWW-Authenticate"), tok)
				assertNoToken(t, logs.String(), tok)
			}
		})
	}
}

// TestMiddlewareVerifierFailure: an error that is not a *tasksync.Error is
// a server problem: 500, logged, and no invalid_token challenge.
func TestMiddlewareVerifierFailure(t *testing.T) {
	t.Parallel()
	broken := verifierFunc(func(context.Context, string) (auth.Identity, error) {
		return auth.Identity{}, errors.New("boom")
	})
	var logs syncBuffer
	r := httptest.NewRequestWithContext(reqlogContext(t.Context(), &logs), http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer x.y.z")
	w := httptest.NewRecorder()
	auth.Middleware(broken)(echoUser).ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", w.Code)
	}
	if h := w.Header().Get("WWW-Authenticate"); h != "" {
		t.Errorf("WWW-Authenticate %q on a server error", h)
	}
	if e := decodeError(t, w.Body.String()); e.Code != tasksync.CodeInternal || strings.Contains(e.Message, "boom") {
		t.Errorf("error %+v", e)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("the cause was not logged: %s", logs.String())
	}
}

// TestMiddlewareQuotesDescription: a verifier message with characters not
// allowed in a quoted-string cannot break the header.
func TestMiddlewareQuotesDescription(t *testing.T) {
	t.Parallel()
	odd := verifierFunc(func(context.Context, string) (auth.Identity, error) {
		return auth.Identity{}, tasksync.Errorf(tasksync.CodeUnauthorized, "bad \"token\"\\\r\nX-Evil: 1")
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer t")
	w := httptest.NewRecorder()
	auth.Middleware(odd)(echoUser).ServeHTTP(w, r)
	want := `Bearer realm="tasksync", error="invalid_token", error_description="bad tokenX-Evil: 1"`
	if got := w.Header().Get("WWW-Authenticate"); got != want {
		t.Fatalf("WWW-Authenticate %q, want %q", got, want)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer abc":   "abc",
		"BEARER abc":   "abc",
		"Bearer  abc ": "abc",
		"Bearer":       "",
		"Bearer ":      "",
		"Bearerabc":    "",
		"Basic abc":    "",
		"":             "",
		"Token abc":    "",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		got, ok := auth.BearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

func TestRequirePathUser(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: secret})
	mux := http.NewServeMux()
	mux.Handle("GET /api/{user_id}/x", auth.Middleware(v)(auth.RequirePathUser(echoUser)))
	mux.Handle("GET /nowildcard", auth.Middleware(v)(auth.RequirePathUser(echoUser)))
	mux.Handle("GET /noauth/{user_id}", auth.RequirePathUser(echoUser))
	tok := signHS256(t, secret, "", claimsFor("user-1"))

	tests := []struct {
		name       string
		path       string
		token      string
		wantStatus int
		wantCode   tasksync.Code
		wantMsg    string
	}{
		{name: "own path", path: "/api/user-1/x", token: tok, wantStatus: 200},
		{name: "another user's path", path: "/api/user-2/x", token: tok, wantStatus: 403, wantCode: tasksync.CodeForbidden, wantMsg: "this token belongs to another user"},
		{name: "prefix of the user id", path: "/api/user-/x", token: tok, wantStatus: 403, wantCode: tasksync.CodeForbidden, wantMsg: "this token belongs to another user"},
		{name: "escaped path", path: "/api/user%2D1/x", token: tok, wantStatus: 200},
		{name: "no token", path: "/api/user-1/x", wantStatus: 401, wantCode: tasksync.CodeUnauthorized, wantMsg: "missing bearer token"},
		{name: "route without wildcard", path: "/nowildcard", token: tok, wantStatus: 500, wantCode: tasksync.CodeInternal, wantMsg: "internal error"},
		{name: "no auth middleware", path: "/noauth/user-1", token: tok, wantStatus: 500, wantCode: tasksync.CodeInternal, wantMsg: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequestWithContext(reqlogContext(t.Context(), io.Discard), http.MethodGet, tt.path, nil)
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == 200 {
				if w.Body.String() != "user-1" {
					t.Errorf("body %q", w.Body)
				}
				return
			}
			if e := decodeError(t, w.Body.String()); e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Errorf("error %+v, want %s %q", e, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestIdentityContext(t *testing.T) {
	t.Parallel()
	if _, ok := auth.FromContext(t.Context()); ok {
		t.Fatal("identity in an empty context")
	}
	want := auth.Identity{UserID: "u", ExpiresAt: t0, Issuer: "i"}
	got, ok := auth.FromContext(auth.WithIdentity(t.Context(), want))
	if !ok || got != want {
		t.Fatalf("FromContext = %+v, %v", got, ok)
	}
}
