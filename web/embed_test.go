package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"tasksync/chat"
	"tasksync/tasks"
	"tasksync/web"
)

func get(t *testing.T, h http.Handler, path string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "tasks.example:8080"
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)

var dataBlock = regexp.MustCompile(`(?s)<script type="application/json" id="[a-z-]+">.*?</script>`)

func TestIndex(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	res := get(t, h, "/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' ws://tasks.example:8080 wss://tasks.example:8080", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	html := body(t, res)
	if strings.Contains(html, "__VERSION__") {
		t.Error("index.html still holds the version placeholder")
	}
	// JSON data blocks are not run (and not subject to script-src); any
	// other script with a body is.
	code := dataBlock.ReplaceAllString(html, "")
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<\s]`).MatchString(code) || regexp.MustCompile(`\son[a-z]+="`).MatchString(html) {
		t.Error("index.html has inline script or inline event handlers, which the CSP blocks")
	}
	refs := assetRef.FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html names %d assets, want the stylesheet and the script", len(refs))
	}
	for _, ref := range refs {
		res := get(t, h, ref[1], nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", ref[1], res.StatusCode)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q, want immutable", ref[1], cc)
		}
	}
	// The same page, revalidated, is a 304.
	etag := res.Header.Get("ETag")
	if res := get(t, h, "/", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with If-None-Match = %d, want 304", res.StatusCode)
	}
}

// TestModulesResolve checks, without a browser, that every relative import
// of every module names an embedded file, and every asset has the content
// type a browser needs to run it under nosniff.
func TestModulesResolve(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	html := body(t, get(t, h, "/", nil))
	version := strings.Split(strings.TrimPrefix(assetRef.FindStringSubmatch(html)[1], "/assets/"), "/")[0]
	imports := regexp.MustCompile(`(?m)(?:^import|^export)[^'"]*from\s+'(\./[^']+)'`)
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "index.html" {
			return err
		}
		res := get(t, h, "/assets/"+version+"/"+p, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", p, res.StatusCode)
		}
		for ext, ct := range types {
			if strings.HasSuffix(p, ext) && res.Header.Get("Content-Type") != ct {
				t.Errorf("%s: Content-Type %q, want %q", p, res.Header.Get("Content-Type"), ct)
			}
		}
		src := body(t, res)
		dir := p[:strings.LastIndex(p, "/")+1]
		for _, m := range imports.FindAllStringSubmatch(src, -1) {
			target := dir + strings.TrimPrefix(m[1], "./")
			if res := get(t, h, "/assets/"+version+"/"+target, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s: %d", p, m[1], res.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOtherVersionNotCached(t *testing.T) {
	t.Parallel()
	res := get(t, web.Handler(), "/assets/0123456789ab/app.css", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET under another version = %d, want 200", res.StatusCode)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
}

func TestNotFoundIsJSON(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, p := range []string{"/api/alice/unknown", "/nope", "/assets/x/missing.js", "/assets/"} {
		res := get(t, h, p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
			continue
		}
		var b struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.NewDecoder(res.Body).Decode(&b); err != nil || b.Error.Code != "not_found" {
			t.Errorf("GET %s: body is not the JSON not_found error (%v)", p, err)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", rec.Code)
	}
}

func TestCSPIgnoresHostileHost(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.example; script-src *"
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, req)
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "evil") || strings.Contains(csp, "*") {
		t.Errorf("a Host header reached the CSP: %q", csp)
	}
}

// TestPageCarriesLimits checks that the page carries the limits of the Go
// packages that enforce them (static/js/limits.js reads them from there),
// and that no static file states a limit of its own.
func TestPageCarriesLimits(t *testing.T) {
	t.Parallel()
	html := body(t, get(t, web.Handler(), "/", nil))
	m := regexp.MustCompile(`(?s)<script type="application/json" id="limits">(.*?)</script>`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal(`the page has no <script type="application/json" id="limits"> block`)
	}
	var got map[string]int
	if err := json.Unmarshal([]byte(m[1]), &got); err != nil {
		t.Fatalf("the limits block is not a JSON object of numbers: %v\n%s", err, m[1])
	}
	want := map[string]int{
		"max_title":        tasks.MaxTitle,
		"max_description":  tasks.MaxDescription,
		"max_tags":         tasks.MaxTags,
		"max_tag":          tasks.MaxTag,
		"max_chat_message": chat.MaxMessageRunes,
		"conversations":    chat.DefaultConversations,
		"messages":         chat.DefaultMessages,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("limits.%s = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("limits = %v, want exactly %v", got, want)
	}
	if strings.Contains(html, "__LIMITS__") {
		t.Error("index.html still holds the limits placeholder")
	}

	// The limits are stated nowhere else in the page's files: no maxlength
	// attribute, no page size (limit=1, one task to probe the token with,
	// is no server limit).
	stated := regexp.MustCompile(`maxlength\s*[=:]|[?&]limit=[0-9]{2,}`)
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile("static/" + p)
		if err != nil {
			return err
		}
		if loc := stated.FindIndex(b); loc != nil {
			t.Errorf("%s states a limit of its own (%q): take it from limits.js", p, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServiceWorker checks the offline shell's worker: served at the root
// (its scope must cover /), revalidated on every check, and naming this
// build's assets path (its cache is per build), never the placeholder.
func TestServiceWorker(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	html := body(t, get(t, h, "/", nil))
	assets := assetRef.FindStringSubmatch(html)[1]
	assets = assets[:strings.Index(assets[len("/assets/"):], "/")+len("/assets/")+1] // "/assets/<version>/"
	res := get(t, h, web.ServiceWorkerPath, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", web.ServiceWorkerPath, res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	src := body(t, res)
	if strings.Contains(src, "__VERSION__") || !strings.Contains(src, "'"+assets+"'") {
		t.Errorf("sw.js does not name this build's assets %s:\n%.300s", assets, src)
	}
}
