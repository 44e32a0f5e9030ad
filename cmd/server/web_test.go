package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestWebRoutes checks how the browser client is mounted: the page at / and
// its files under /assets/, while unknown paths of any method, under /api
// or not, keep the API's JSON 404.
func TestWebRoutes(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	inst := env.start(env.config(nil))

	res, err := http.Get(inst.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s, want the HTML page", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("GET /: no Content-Security-Policy")
	}

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/alice/unknown"},
		{http.MethodPost, "/api/alice/unknown"},
		{http.MethodGet, "/nothing-here"},
		{http.MethodPost, "/nothing-here"},
		{http.MethodGet, "/assets/x/missing.js"},
	} {
		req, _ := http.NewRequest(c.method, inst.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || err != nil || body.Error.Code != "not_found" {
			t.Errorf("%s %s = %d %q (%v), want the JSON 404", c.method, c.path, res.StatusCode, body.Error.Code, err)
		}
	}
}

// TestSDKRoute checks that the SDK bundle is served at /sdk/ as a module a
// browser runs (JavaScript type under nosniff, importable from another
// origin), revalidated on every load, and that missing files keep the JSON
// 404.
func TestSDKRoute(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	inst := env.start(env.config(nil))

	res, err := http.Get(inst.URL + "/sdk/tasksync-client.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("GET /sdk/tasksync-client.js = %d %q, want the module", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
		t.Errorf("Cache-Control %q, ETag %q: want no-cache and an ETag, so that a redeploy is picked up", res.Header.Get("Cache-Control"), res.Header.Get("ETag"))
	}
	req, _ := http.NewRequest(http.MethodGet, inst.URL+"/sdk/tasksync-client.js", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation = %v %v, want 304", res, err)
	} else {
		res.Body.Close()
	}
	res, err = http.Get(inst.URL + "/sdk/tasksync-client.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /sdk/tasksync-client.d.ts = %d", res.StatusCode)
	}

	for _, p := range []string{"/sdk/", "/sdk/nope.js"} {
		res, err := http.Get(inst.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || err != nil || body.Error.Code != "not_found" {
			t.Errorf("GET %s = %d %q (%v), want the JSON 404", p, res.StatusCode, body.Error.Code, err)
		}
	}
}
