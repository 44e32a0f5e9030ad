// Package tsclient serves the built @tasksync/client SDK (clients/ts/dist,
// compiled from clients/ts/src by tsc and committed) so that a plain page
// can `import { createClient } from "/sdk/tasksync-client.js"` from the
// server it talks to, with no bundler and no npm.
//
// The files are embedded at build time: a server always serves the SDK of
// its own commit, so the client and the protocol it speaks match.
package tsclient

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"tasksync/internal/static"
)

//go:embed dist
var dist embed.FS

// Prefix is where [Handler] serves the files of dist: the SDK's entry is
// Prefix + "tasksync-client.js", its types Prefix + "tasksync-client.d.ts".
const Prefix = "/sdk/"

type handler struct {
	files map[string]static.File // by path under dist/, e.g. "tasksync-client.js"
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
	files, err := static.ReadTree(root)
	return &handler{files: files}, err
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !static.ReadOnly(w, r) {
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	f, found := h.files[name]
	if !ok || !found {
		static.NotFound(w, r)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
	f.Serve(w, r, "no-cache")
}
