package quickadd

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"tasksync"
	"tasksync/internal/httpjson"
	"tasksync/internal/utf8json"
	"tasksync/tasks"
)

// Handler serves POST /api/{user_id}/parse: the quick-add preview. It
// reads and writes nothing but the request: the caller saves the task
// with the fields it answers.
type Handler struct {
	// MaxBody limits request bodies; 0 means httpjson.DefaultMaxBody.
	MaxBody int64
	// Now is the reference time; nil means time.Now (tests fix it).
	Now func() time.Time
}

// Register adds the route to mux, wrapped by mw (authentication, the
// path-user check and rate limiting are the caller's to supply, as for the
// task routes).
func (h *Handler) Register(mux *http.ServeMux, mw func(http.Handler) http.Handler) {
	mux.Handle("POST /api/{user_id}/parse", mw(http.HandlerFunc(h.parse)))
}

// Request is the body of POST /api/{user_id}/parse.
type Request struct {
	Text string
	Zone *time.Location // from "tz"; UTC when absent or null
}

// DecodeRequest reads {"text": string, "tz"?: string|null}. Unknown keys
// are ignored; every bad field is reported at once (422).
func DecodeRequest(raw map[string]json.RawMessage) (Request, error) {
	req := Request{Zone: time.UTC}
	bad := map[string]string{}
	v, ok := raw["text"]
	var text string
	switch {
	case !ok || string(v) == "null":
		bad["text"] = "is required: the quick-add text to read"
	case json.Unmarshal(v, &text) != nil:
		bad["text"] = "must be a string"
	case !utf8json.Valid(v) || strings.ContainsRune(text, 0):
		bad["text"] = "must be UTF-8 text without NUL characters"
	case utf8.RuneCountInString(text) > MaxText:
		bad["text"] = "must be at most 1000 characters"
	default:
		req.Text = text
	}
	if v, ok := raw["tz"]; ok && string(v) != "null" {
		var name string
		if json.Unmarshal(v, &name) != nil {
			bad["tz"] = "must be an IANA time zone name like Europe/Berlin, or null for UTC"
		} else if loc, err := LoadZone(name); err != nil {
			bad["tz"] = err.Error()
		} else {
			req.Zone = loc
		}
	}
	if len(bad) > 0 {
		return Request{}, tasksync.Invalid(bad)
	}
	return req, nil
}

// zoneErr is the message for a zone name that is not one.
type zoneErr struct{}

func (zoneErr) Error() string {
	return "must be an IANA time zone name like Europe/Berlin, or null for UTC"
}

// LoadZone reads an IANA time zone name ("Europe/Berlin", "UTC"). Names
// that time.LoadLocation takes but that are not portable zone names are
// refused: "" and "Local" (the server's own zone), paths.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, zoneErr{}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+-", r)) {
			return nil, zoneErr{}
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, zoneErr{}
	}
	return loc, nil
}

// Response is the answer of POST /api/{user_id}/parse (docs/openapi.yaml
// ParseResult). Times are in tasks.TimeLayout (UTC); Zone is the zone
// they were read in.
type Response struct {
	Title      string          `json:"title"`
	DueAt      *string         `json:"due_at"`
	AllDay     bool            `json:"all_day"`
	RemindAt   *string         `json:"remind_at"`
	Recurrence *string         `json:"recurrence"`
	TZ         string          `json:"tz"`
	Priority   *tasks.Priority `json:"priority"`
	Tags       []string        `json:"tags"`
	Understood []SpanJSON      `json:"understood"`
	Unparsed   []string        `json:"unparsed"`
}

// SpanJSON is one understood phrase in a Response.
type SpanJSON struct {
	Text  string `json:"text"`
	Field Field  `json:"field"`
	Value string `json:"value"`
}

// NewResponse is the JSON shape of r, read in loc.
func NewResponse(r Result, loc *time.Location) Response {
	stamp := func(t *time.Time) *string {
		if t == nil {
			return nil
		}
		s := t.UTC().Format(tasks.TimeLayout)
		return &s
	}
	out := Response{
		Title: r.Title, DueAt: stamp(r.DueAt), AllDay: r.AllDay, RemindAt: stamp(r.RemindAt),
		TZ: loc.String(), Tags: r.Tags, Understood: []SpanJSON{}, Unparsed: []string{},
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if r.Recurrence != "" {
		out.Recurrence = &r.Recurrence
	}
	if r.Priority != "" {
		out.Priority = &r.Priority
	}
	for _, s := range r.Understood {
		out.Understood = append(out.Understood, SpanJSON{Text: s.Text, Field: s.Field, Value: s.Value})
	}
	for _, f := range r.Unparsed {
		out.Unparsed = append(out.Unparsed, f.Text)
	}
	return out
}

func (h *Handler) parse(w http.ResponseWriter, r *http.Request) {
	var raw map[string]json.RawMessage
	if err := httpjson.Read(w, r, &raw, h.MaxBody); err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if raw == nil {
		httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeBadRequest, "the body must be a JSON object"))
		return
	}
	req, err := DecodeRequest(raw)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	httpjson.Write(w, http.StatusOK, NewResponse(Parse(req.Text, now(), req.Zone), req.Zone))
}
