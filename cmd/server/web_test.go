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
