// Package tsclient serves the built @tasksync/client SDK (clients/ts/dist,
// compiled from clients/ts/src by tsc and committed) so that a plain page
// can `import { createClient } from "/sdk/tasksync-client.js"` from the
// server it talks to, with no bundler and no npm.
//
// The files are embedded at build time: a server always serves the SDK of
// its own commit, so the client and the protocol it speaks match.
package tsclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"tasksync"
	"tasksync/internal/httpjson"
)

//go:embed dist
var dist embed.FS

// Prefix is where [Handler] serves the files of dist: the SDK's entry is
// Prefix + "tasksync-client.js", its types Prefix + "tasksync-client.d.ts".
const Prefix = "/sdk/"

// contentTypes are set explicitly (with nosniff): the system's MIME table
// must not decide whether a browser runs a module.
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".ts":   "application/typescript; charset=utf-8", // .d.ts: what Deno and editors expect
	".map":  "application/json; charset=utf-8",
	".json": "application/json; charset=utf-8",
}

type file struct {
	body        []byte
	etag        string
	contentType string
}

type handler struct {
	files map[string]file // by path under dist/, e.g. "tasksync-client.js"
}

// Handler returns the handler of the SDK files. Mount it for GET at
// Prefix ("GET /sdk/"); unknown files get the API's JSON 404.
//
// Files are served with Cache-Control: no-cache and a content ETag: the
// names carry no version (pages import a fixed URL), so every load
// revalidates (a 304 when nothing changed) and a redeploy is picked up at
// once. Access-Control-Allow-Origin: * lets a page on another origin (the
// app's own site) import the module; the files are public and no
// credentials are involved.
func Handler() http.Handler {
	h, err := load(dist)
	if err != nil {
		// The files are compiled in: a failure is a broken build.
		panic("tsclient: " + err.Error())
	}
	return h
}

func load(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	h := &handler{files: map[string]file{}}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		h.files[p] = newFile(p, b)
		return nil
	})
	return h, err
}

func newFile(name string, b []byte) file {
	sum := sha256.Sum256(b)
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return file{body: b, etag: `"` + hex.EncodeToString(sum[:])[:16] + `"`, contentType: ct}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	f, found := h.files[name]
	if !ok || !found {
		// The API's own 404 (the same message as an unknown route).
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
	// ServeContent answers If-None-Match (304), HEAD and Range.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
