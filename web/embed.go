package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"tasksync"
	"tasksync/chat"
	"tasksync/internal/httpjson"
	"tasksync/tasks"
)

//go:embed static
var static embed.FS

// AssetsPrefix is where the files named by the page are served, followed
// by the version and the file's path under static/.
const AssetsPrefix = "/assets/"

// versionPlaceholder is replaced in index.html by AssetsPrefix + version,
// so that the page names exactly the files of its own build.
const versionPlaceholder = "/assets/__VERSION__/"

// ServiceWorkerPath is where the offline shell's service worker is served:
// at the root, so that its scope covers the page at /.
const ServiceWorkerPath = "/sw.js"

// serviceWorker is its file under static/.
const serviceWorker = "sw.js"

// limitsPlaceholder is replaced in index.html by the JSON of [pageLimits]:
// the page reads the limits from there (static/js/limits.js), so that each
// is stated once, in the Go package that enforces it.
const limitsPlaceholder = "__LIMITS__"

// limits are the server's limits that the board checks before it sends
// anything (so that a user learns of a too-long title while typing, not
// from a refused change), and the page sizes it asks for.
type limits struct {
	// MaxTitle, MaxDescription: characters (Unicode code points) after
	// trimming; MaxTags tags of at most MaxTag characters each.
	MaxTitle       int `json:"max_title"`
	MaxDescription int `json:"max_description"`
	MaxTags        int `json:"max_tags"`
	MaxTag         int `json:"max_tag"`
	// MaxChatMessage: characters of one message to the assistant.
	MaxChatMessage int `json:"max_chat_message"`
	// Conversations and Messages: how many of each the chat panel loads.
	Conversations int `json:"conversations"`
	Messages      int `json:"messages"`
}

// pageLimits returns the limits the page carries, from the packages that
// own them.
func pageLimits() limits {
	return limits{
		MaxTitle:       tasks.MaxTitle,
		MaxDescription: tasks.MaxDescription,
		MaxTags:        tasks.MaxTags,
		MaxTag:         tasks.MaxTag,
		MaxChatMessage: chat.MaxMessageRunes,
		Conversations:  chat.DefaultConversations,
		Messages:       chat.DefaultMessages,
	}
}

// contentTypes are set explicitly: the system's MIME table must not decide
// what a browser executes (X-Content-Type-Options: nosniff is set too).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

type file struct {
	body        []byte
	etag        string
	contentType string
}

// site is the embedded tree, read once.
type site struct {
	version string
	index   file
	worker  file            // sw.js with this build's assets path
	files   map[string]file // by path under static/, e.g. "js/main.js"
}

// Handler returns the handler of the browser client. Mount it for GET at
// "/{$}", at ServiceWorkerPath and at AssetsPrefix; it answers anything else with a JSON 404.
func Handler() http.Handler {
	s, err := load(static)
	if err != nil {
		// The files are compiled in: a failure is a broken build.
		panic("web: " + err.Error())
	}
	return s
}

func load(fsys fs.FS) (*site, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	s := &site{files: map[string]file{}}
	tree := sha256.New()
	var indexBody []byte
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		tree.Write([]byte(p))
		tree.Write([]byte{0})
		tree.Write(b)
		if p == "index.html" {
			indexBody = b
			return nil
		}
		s.files[p] = newFile(p, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if indexBody == nil {
		return nil, fs.ErrNotExist
	}
	s.version = hex.EncodeToString(tree.Sum(nil))[:12]
	// json.Marshal escapes <, > and &: the block cannot end its <script>.
	lim, err := json.Marshal(pageLimits())
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(indexBody, []byte(limitsPlaceholder)) {
		return nil, fmt.Errorf("index.html has no %s placeholder", limitsPlaceholder)
	}
	indexBody = bytes.ReplaceAll(indexBody, []byte(versionPlaceholder), []byte(AssetsPrefix+s.version+"/"))
	// The service worker names this build's assets (its cache is per build).
	sw, ok := s.files[serviceWorker]
	if !ok {
		return nil, fmt.Errorf("static/%s is missing", serviceWorker)
	}
	s.worker = newFile(serviceWorker, bytes.ReplaceAll(sw.body, []byte(versionPlaceholder), []byte(AssetsPrefix+s.version+"/")))
	indexBody = bytes.ReplaceAll(indexBody, []byte(limitsPlaceholder), lim)
	s.index = newFile("index.html", indexBody)
	return s, nil
}

func newFile(name string, b []byte) file {
	sum := sha256.Sum256(b)
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return file{body: b, etag: `"` + hex.EncodeToString(sum[:])[:16] + `"`, contentType: ct}
}

// hostSource matches a Host header that is safe to repeat in the
// Content-Security-Policy: a name or IPv4/IPv6 literal with an optional
// port, nothing that could end the directive.
var hostSource = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)(:[0-9]{1,5})?$`)

// csp allows this origin only. connect-src names ws: and wss: of the
// same host explicitly, for browsers whose 'self' does not cover
// WebSocket schemes.
func csp(r *http.Request) string {
	connect := "'self'"
	if hostSource.MatchString(r.Host) {
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	var (
		f     file
		cache string
	)
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		f, cache = s.index, "no-cache"
	case p == ServiceWorkerPath:
		// Browsers check for a new worker at every navigation anyway;
		// no-cache makes that check reach the server.
		f, cache = s.worker, "no-cache"
	case strings.HasPrefix(p, AssetsPrefix):
		version, name, _ := strings.Cut(strings.TrimPrefix(p, AssetsPrefix), "/")
		var ok bool
		if f, ok = s.files[name]; !ok {
			s.notFound(w, r)
			return
		}
		cache = "public, max-age=31536000, immutable"
		if version != s.version {
			// Another build's page: serve what we have, but never let it
			// be cached under that build's name.
			cache = "no-cache"
		}
	default:
		s.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", cache)
	h.Set("ETag", f.etag)
	h.Set("Content-Security-Policy", csp(r))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	// ServeContent answers If-None-Match (304), HEAD and Range.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

func (s *site) notFound(w http.ResponseWriter, r *http.Request) {
	httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
}
