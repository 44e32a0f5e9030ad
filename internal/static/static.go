// Package static serves files compiled into the binary (the board, the SDK,
// the OpenAPI document): each read once, with a content ETag, an explicit
// content type and nosniff, answered through http.ServeContent (304 on
// If-None-Match, HEAD, ranges). The packages that own the files choose the
// paths and the caching and add their own headers.
package static

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"

	"tasksync"
	"tasksync/internal/httpjson"
)

// contentTypes are set explicitly: the system's MIME table must not decide
// what a browser executes.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".ts":   "application/typescript; charset=utf-8", // .d.ts: what Deno and editors expect
	".map":  "application/json; charset=utf-8",
	".json": "application/json; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

// File is one file ready to serve.
type File struct {
	Body        []byte
	ETag        string
	ContentType string
}

// NewFile makes the File of body, typed by the extension of name.
func NewFile(name string, body []byte) File {
	sum := sha256.Sum256(body)
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return File{Body: body, ETag: `"` + hex.EncodeToString(sum[:])[:16] + `"`, ContentType: ct}
}

// ReadTree reads every file under fsys, by its slash-separated path.
func ReadTree(fsys fs.FS) (map[string]File, error) {
	files := map[string]File{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files[p] = NewFile(p, b)
		return nil
	})
	return files, err
}

// Serve writes f with its Content-Type, ETag, nosniff and the given
// Cache-Control (headers the caller set before stay).
func (f File) Serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", f.ETag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.Body))
}

// ReadOnly answers a request that is neither GET nor HEAD with the API's
// JSON 405 and reports false; true means go on.
func ReadOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	return false
}

// NotFound answers with the API's JSON 404, the same as for an unknown route.
func NotFound(w http.ResponseWriter, r *http.Request) {
	httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
}
