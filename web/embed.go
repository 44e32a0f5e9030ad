package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"tasksync/chat"
	"tasksync/internal/static"
	"tasksync/tasks"
)

//go:embed static
var staticFS embed.FS

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

// site is the embedded tree, read once.
type site struct {
	version string
	index   static.File
	worker  static.File            // sw.js with this build's assets path
	files   map[string]static.File // by path under static/, e.g. "js/main.js"
}

// Handler returns the handler of the browser client. Mount it for GET at
// "/{$}", at ServiceWorkerPath and at AssetsPrefix; it answers anything else with a JSON 404.
func Handler() http.Handler {
	s, err := load(staticFS)
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
	files, err := static.ReadTree(root)
	if err != nil {
		return nil, err
	}
	// The version names this build: a hash of every path and its bytes.
	tree := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		tree.Write([]byte(p))
		tree.Write([]byte{0})
		tree.Write(files[p].Body)
	}
	indexFile, ok := files["index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	delete(files, "index.html")
	s := &site{files: files}
	indexBody := indexFile.Body
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
	s.worker = static.NewFile(serviceWorker, bytes.ReplaceAll(sw.Body, []byte(versionPlaceholder), []byte(AssetsPrefix+s.version+"/")))
	indexBody = bytes.ReplaceAll(indexBody, []byte(limitsPlaceholder), lim)
	s.index = static.NewFile("index.html", indexBody)
	return s, nil
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
	if !static.ReadOnly(w, r) {
		return
	}
	var (
		f     static.File
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
			static.NotFound(w, r)
			return
		}
		cache = "public, max-age=31536000, immutable"
		if version != s.version {
			// Another build's page: serve what we have, but never let it
			// be cached under that build's name.
			cache = "no-cache"
		}
	default:
		static.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp(r))
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	f.Serve(w, r, cache)
}
