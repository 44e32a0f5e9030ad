package tsclient_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	tsclient "tasksync/clients/ts"
)

func get(t *testing.T, h http.Handler, p string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, p, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestEntryAndTypes(t *testing.T) {
	t.Parallel()
	h := tsclient.Handler()
	for p, ct := range map[string]string{
		"/sdk/tasksync-client.js":   "text/javascript; charset=utf-8",
		"/sdk/tasksync-client.d.ts": "application/typescript; charset=utf-8",
	} {
		res := get(t, h, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", p, res.StatusCode)
		}
		for k, want := range map[string]string{
			"Content-Type":                ct,
			"Cache-Control":               "no-cache",
			"X-Content-Type-Options":      "nosniff",
			"Access-Control-Allow-Origin": "*",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", p, k, got, want)
			}
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", p)
		}
		// A page reloaded after no redeploy revalidates to a 304.
		if res := get(t, h, p, map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match = %d, want 304", p, res.StatusCode)
		}
		// After a redeploy the ETag differs: the old one gets the new file.
		if res := get(t, h, p, map[string]string{"If-None-Match": `"0000000000000000"`}); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with another ETag = %d, want 200", p, res.StatusCode)
		}
	}
}

// TestModulesResolve checks, without a browser, that every relative import
// of every embedded module names an embedded file: a page that imports the
// entry from /sdk/ gets the whole SDK.
func TestModulesResolve(t *testing.T) {
	t.Parallel()
	h := tsclient.Handler()
	imports := regexp.MustCompile(`(?m)(?:^|[;\s])(?:import|export)\s*(?:[^'"]*?\sfrom\s*)?["'](\.{1,2}/[^"']+)["']|import\(\s*["'](\.{1,2}/[^"']+)["']\s*\)`)
	n := 0
	err := fs.WalkDir(os.DirFS("dist"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		n++
		res := get(t, h, "/sdk/"+p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /sdk/%s = %d", p, res.StatusCode)
		}
		src, _ := io.ReadAll(res.Body)
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			ref := m[1] + m[2]
			target := path.Join(path.Dir(p), ref)
			if !strings.HasSuffix(ref, ".js") {
				t.Errorf("%s imports %q: browsers need the .js suffix", p, ref)
			}
			if res := get(t, h, "/sdk/"+target, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s: GET /sdk/%s = %d", p, ref, target, res.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("dist holds no .js file")
	}
}

func TestNotFoundIsJSON(t *testing.T) {
	t.Parallel()
	h := tsclient.Handler()
	for _, p := range []string{"/sdk/", "/sdk/missing.js", "/sdk/../embed.go", "/sdk/dist/tasksync-client.js"} {
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
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/sdk/tasksync-client.js", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", rec.Code)
	}
}
