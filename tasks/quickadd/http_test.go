package quickadd

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"tasksync/auth"
	"tasksync/internal/contract"
	"tasksync/internal/httpjson"
)

func TestMain(m *testing.M) {
	// Every HTTP answer the tests get must match docs/openapi.yaml.
	api := contract.ValidateHTTP()
	api.PartialServer = true // the test server mounts this package's route only
	os.Exit(api.Report(m.Run()))
}

var testSecret = []byte("tasksync-test-secret-0123456789-abcdef")

// newServer serves the parse route the way cmd/server does (minus rate
// limiting), with the reference time of the table.
func newServer(t *testing.T, maxBody int64) *httptest.Server {
	t.Helper()
	v, err := auth.NewVerifier(t.Context(), auth.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h := &Handler{MaxBody: maxBody, Now: func() time.Time { return refNow }}
	h.Register(mux, func(next http.Handler) http.Handler { return auth.Middleware(v)(auth.RequirePathUser(next)) })
	srv := httptest.NewServer(httpjson.Routes(mux))
	t.Cleanup(srv.Close)
	contract.ValidateHTTP().Serve(srv.URL)
	return srv
}

func post(t *testing.T, srv *httptest.Server, user, token, contentType, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/"+user+"/parse", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req) // the contract-checking transport
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func bearer(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestParseHTTP(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 0)
	tok := bearer(t, "ann")

	code, body := post(t, srv, "ann", tok, "application/json",
		`{"text":"Pay rent every month on the 1st !high #home at 25:00","tz":"Europe/Berlin"}`)
	want := `{"title":"Pay rent","due_at":"2026-12-31T23:00:00.000000Z","all_day":true,"remind_at":null,` +
		`"recurrence":"FREQ=MONTHLY;BYMONTHDAY=1","tz":"Europe/Berlin","priority":"high","tags":["home"],` +
		`"understood":[{"text":"every month on the 1st","field":"recurrence","value":"FREQ=MONTHLY;BYMONTHDAY=1"},` +
		`{"text":"!high","field":"priority","value":"high"},{"text":"#home","field":"tags","value":"home"}],` +
		`"unparsed":["at 25:00"]}`
	if code != http.StatusOK || strings.TrimSpace(string(body)) != want {
		t.Fatalf("got %d %s\nwant 200 %s", code, body, want)
	}

	// Without tz (or with null) the text is read in UTC.
	for _, b := range []string{`{"text":"call tomorrow at 9"}`, `{"text":"call tomorrow at 9","tz":null}`} {
		code, body = post(t, srv, "ann", tok, "application/json", b)
		var got Response
		if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %s", b, code, body)
		}
		if got.TZ != "UTC" || got.DueAt == nil || *got.DueAt != "2026-12-03T09:00:00.000000Z" || got.Priority != nil || got.Recurrence != nil {
			t.Errorf("%s: %s", b, body)
		}
	}
}

func TestParseHTTPRefusals(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 1024)
	tok := bearer(t, "ann")
	cases := []struct {
		name, user, token, contentType, body string
		status                               int
		field                                string // of a 422
	}{
		{"unknown zone", "ann", tok, "application/json", `{"text":"x","tz":"Mars/Olympus"}`, 422, "tz"},
		{"server's zone", "ann", tok, "application/json", `{"text":"x","tz":"Local"}`, 422, "tz"},
		{"empty zone", "ann", tok, "application/json", `{"text":"x","tz":""}`, 422, "tz"},
		{"zone path", "ann", tok, "application/json", `{"text":"x","tz":"../../etc/passwd"}`, 422, "tz"},
		{"zone not a string", "ann", tok, "application/json", `{"text":"x","tz":1}`, 422, "tz"},
		{"no text", "ann", tok, "application/json", `{"tz":"UTC"}`, 422, "text"},
		{"text not a string", "ann", tok, "application/json", `{"text":["x"]}`, 422, "text"},
		{"text with NUL", "ann", tok, "application/json", `{"text":"a\u0000b"}`, 422, "text"},
		{"text too long", "ann", tok, "application/json", `{"text":"` + strings.Repeat("é", MaxText+1) + `"}`, 413, ""},
		{"not an object", "ann", tok, "application/json", `["x"]`, 400, ""},
		{"not JSON", "ann", tok, "text/plain", `text=x`, 415, ""},
		{"empty", "ann", tok, "application/json", ``, 400, ""},
		{"no token", "ann", "", "application/json", `{"text":"x"}`, 401, ""},
		{"another user", "bob", tok, "application/json", `{"text":"x"}`, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := post(t, srv, c.user, c.token, c.contentType, c.body)
			if code != c.status {
				t.Fatalf("%d %s, want %d", code, body, c.status)
			}
			if c.field != "" {
				var e struct {
					Error struct{ Fields map[string]string }
				}
				_ = json.Unmarshal(body, &e)
				if e.Error.Fields[c.field] == "" {
					t.Errorf("no message for %s: %s", c.field, body)
				}
			}
		})
	}
	// Over MaxText characters but within the body limit: 422.
	srv = newServer(t, 0)
	code, body := post(t, srv, "ann", tok, "application/json", `{"text":"`+strings.Repeat("a", MaxText+1)+`"}`)
	if code != 422 || !strings.Contains(string(body), `"text"`) {
		t.Errorf("long text: %d %s", code, body)
	}
}
