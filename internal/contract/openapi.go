package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"tasksync/docs"
)

// OpenAPI checks HTTP responses against docs/openapi.yaml: the route must
// be documented (method and path), and so must the status; the documented
// headers must be there and valid, and the body must match the schema of
// its content type. Server-sent events (text/event-stream with
// x-sse-events) are checked event by event as the body is read.
//
// Two answers are accepted on routes the document does not have, as the
// document says in its description: the JSON 404 of a path no route
// matches (components.responses.NoRoute) and the JSON 405 of a documented
// path with another method (components.responses.MethodNotAllowed). CORS
// preflights (OPTIONS with Access-Control-Request-Method) are not checked.
//
// An OpenAPI is safe for concurrent use. Mismatches are returned and also
// kept, for [OpenAPI.Report].
type OpenAPI struct {
	doc    *openapi3.T
	router routers.Router

	// PartialServer says the server under test mounts only some of the
	// documented routes (a package's own handlers): the JSON 404 of a path
	// no route matches is then accepted on documented paths too. Set it
	// before the first Check.
	PartialServer bool

	mu        sync.Mutex
	servers   map[string]bool // host:port of the servers under test
	failures  []string
	responses int
	skipped   int
	seen      map[string]int // "METHOD path status" -> responses
}

// LoadOpenAPI loads and validates the embedded docs/openapi.yaml.
func LoadOpenAPI() (*OpenAPI, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("docs/openapi.yaml: openapi %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: routes: %w", err)
	}
	return &OpenAPI{doc: doc, router: router, seen: map[string]int{}, servers: map[string]bool{}}, nil
}

// Doc is the loaded document.
func (o *OpenAPI) Doc() *openapi3.T { return o.doc }

// plain media types whose bodies are validated as strings.
func init() {
	for _, ct := range []string{"text/event-stream", "text/html", "text/css", "text/javascript", "application/openmetrics-text"} {
		openapi3filter.RegisterBodyDecoder(ct, func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(r)
			return string(b), err
		})
	}
}

// Serve says that baseURL ("http://127.0.0.1:port") is a server under
// test: the answers of other servers (a fake model endpoint, say) are not
// checked.
func (o *OpenAPI) Serve(baseURL string) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		panic(fmt.Sprintf("contract: Serve(%q): not a base URL", baseURL))
	}
	o.mu.Lock()
	o.servers[u.Host] = true
	o.mu.Unlock()
}

// Check validates res, the answer to req. The body of res is read and put
// back, unless it is an event stream, which is checked as it is read: its
// Body is replaced by one that fails its Read with the mismatch. A 101
// (a WebSocket upgrade) is checked by status only, its body left alone.
func (o *OpenAPI) Check(req *http.Request, res *http.Response) error {
	o.mu.Lock()
	ours := o.servers[req.URL.Host]
	o.mu.Unlock()
	if !ours {
		return nil
	}
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		o.mu.Lock()
		o.skipped++
		o.mu.Unlock()
		return nil
	}
	err := o.check(req, res)
	key := req.Method + " " + o.templateOf(req) + " " + fmt.Sprint(res.StatusCode)
	o.mu.Lock()
	o.responses++
	o.seen[key]++
	o.mu.Unlock()
	if err != nil {
		return o.fail(req, res.StatusCode, err)
	}
	return nil
}

func (o *OpenAPI) fail(req *http.Request, status int, err error) error {
	err = fmt.Errorf("contract: %s %s -> %d does not match docs/openapi.yaml: %w", req.Method, req.URL.RequestURI(), status, err)
	o.mu.Lock()
	o.failures = append(o.failures, err.Error())
	o.mu.Unlock()
	return err
}

// templateOf is the documented path of req, or "(undocumented)".
func (o *OpenAPI) templateOf(req *http.Request) string {
	route, _, err := o.findRoute(req)
	if err != nil && route == nil {
		return "(undocumented)"
	}
	return route.Path
}

// findRoute finds req's operation; HEAD is looked up as GET. When the path
// is documented without req's method, route has the path and err is
// routers.ErrMethodNotAllowed.
func (o *OpenAPI) findRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	r := req
	if req.Method == http.MethodHead {
		r = req.Clone(req.Context())
		r.Method = http.MethodGet
	}
	route, params, err := o.router.FindRoute(r)
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		// Find the path for the report: any documented method will do.
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if rt, _, e := o.router.FindRoute(probe); e == nil {
				return &routers.Route{Spec: rt.Spec, Path: rt.Path, PathItem: rt.PathItem, Method: req.Method}, nil, err
			}
		}
	}
	return route, params, err
}

func (o *OpenAPI) check(req *http.Request, res *http.Response) error {
	route, params, err := o.findRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return o.checkFallback(res, "NoRoute", http.StatusNotFound, "no route matches the path")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return o.checkFallback(res, "MethodNotAllowed", http.StatusMethodNotAllowed, "the path is documented, but not with this method")
	case err != nil:
		return err
	}
	op := route.Operation
	if o.PartialServer && res.StatusCode == http.StatusNotFound && op.Responses.Status(res.StatusCode) == nil {
		return o.checkFallback(res, "NoRoute", http.StatusNotFound, "a documented route this test server does not mount")
	}
	if op.Responses.Status(res.StatusCode) == nil {
		return fmt.Errorf("status %d is not documented for %s %s (operation %s)", res.StatusCode, route.Method, route.Path, op.OperationID)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil // the body is the connection
	}
	resp := op.Responses.Status(res.StatusCode).Value
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route, Options: opts,
		},
		Status:  res.StatusCode,
		Header:  res.Header,
		Options: opts,
	}
	if req.Method == http.MethodHead || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified {
		// No body; the headers are still checked.
		if err := checkHeaders(resp, res.Header); err != nil {
			return err
		}
		if b, _ := peekAll(res); len(b) > 0 && req.Method != http.MethodHead {
			return fmt.Errorf("a %d with a body", res.StatusCode)
		}
		return nil
	}
	if len(resp.Content) == 0 {
		if b, _ := peekAll(res); len(b) > 0 {
			return fmt.Errorf("a body (%q), but the document says none for %d", truncate(b), res.StatusCode)
		}
		return checkHeaders(resp, res.Header)
	}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt == "text/event-stream" {
		media := resp.Content.Get(res.Header.Get("Content-Type"))
		if media == nil {
			return fmt.Errorf("content type %q is not documented for %d", res.Header.Get("Content-Type"), res.StatusCode)
		}
		opts.ExcludeResponseBody = true
		input.Body = http.NoBody
		if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
			return err
		}
		events, err := o.sseSchemas(media)
		if err != nil {
			return err
		}
		if events != nil {
			res.Body = &sseChecker{o: o, req: req, status: res.StatusCode, body: res.Body, events: events, end: sseEnd(media)}
		}
		return nil
	}
	body, readErr := peekAll(res)
	if readErr != nil {
		return nil // the answer broke off; the caller sees the read error
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("%w (body %s)", err, truncate(body))
	}
	return nil
}

// checkHeaders checks the documented headers of an answer without a body
// (ValidateResponse skips 304s and HEADs altogether).
func checkHeaders(resp *openapi3.Response, h http.Header) error {
	for name, ref := range resp.Headers {
		if ref.Value == nil {
			continue
		}
		v := h.Get(name)
		if v == "" {
			if ref.Value.Required {
				return fmt.Errorf("header %s is required", name)
			}
			continue
		}
		if s := ref.Value.Schema; s != nil && s.Value != nil && s.Value.Type.Is("string") {
			if err := s.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
				return fmt.Errorf("header %s: %w", name, err)
			}
		}
	}
	return nil
}

// checkFallback accepts the answer of a route outside the document only
// when it is the documented answer to such routes (components.responses.name
// with its status).
func (o *OpenAPI) checkFallback(res *http.Response, name string, status int, why string) error {
	if res.StatusCode != status {
		return fmt.Errorf("undocumented route (%s) answered %d; document the route", why, res.StatusCode)
	}
	ref := o.doc.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("components.responses.%s is missing", name)
	}
	if err := checkHeaders(ref.Value, res.Header); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	media := ref.Value.Content.Get(res.Header.Get("Content-Type"))
	if media == nil || media.Schema == nil {
		return fmt.Errorf("%s: content type %q is not %s's", why, res.Header.Get("Content-Type"), name)
	}
	body, err := peekAll(res)
	if err != nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s: body is not JSON: %q", name, truncate(body))
	}
	if err := media.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%s (%s): %w (body %s)", name, why, err, truncate(body))
	}
	return nil
}

// peekAll reads the whole body and puts it back.
func peekAll(res *http.Response) ([]byte, error) {
	if res.Body == nil || res.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{err}))
		return b, err
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func truncate(b []byte) string {
	const max = 300
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// sseSchemas resolves x-sse-events: event name -> schema. nil when the
// media type has none (the stream is not checked event by event).
func (o *OpenAPI) sseSchemas(media *openapi3.MediaType) (map[string]*openapi3.Schema, error) {
	raw, ok := media.Extensions["x-sse-events"].(map[string]any)
	if !ok {
		return nil, nil
	}
	out := map[string]*openapi3.Schema{}
	for name, v := range raw {
		m, _ := v.(map[string]any)
		ref, _ := m["$ref"].(string)
		schemaName, ok := strings.CutPrefix(ref, "#/components/schemas/")
		s := o.doc.Components.Schemas[schemaName]
		if !ok || s == nil || s.Value == nil {
			return nil, fmt.Errorf("x-sse-events: %s: %q is not a component schema", name, ref)
		}
		out[name] = s.Value
	}
	return out, nil
}

// sseEnd is x-sse-end: the events that may end a stream (nil: any).
func sseEnd(media *openapi3.MediaType) []string {
	raw, _ := media.Extensions["x-sse-end"].([]any)
	var out []string
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// sseChecker checks each server-sent event as the body is read. A
// mismatch fails the Read that completes the event.
type sseChecker struct {
	o      *OpenAPI
	req    *http.Request
	status int
	body   io.ReadCloser
	events map[string]*openapi3.Schema
	end    []string

	buf   []byte
	last  string // name of the last event
	count int
	err   error
}

func (c *sseChecker) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.body.Read(p)
	c.buf = append(c.buf, p[:n]...)
	if cerr := c.scan(); cerr != nil {
		c.err = c.o.fail(c.req, c.status, cerr)
		return n, c.err
	}
	if err == io.EOF {
		if len(bytes.TrimSpace(c.buf)) > 0 {
			c.err = c.o.fail(c.req, c.status, fmt.Errorf("event stream ends inside an event: %q", truncate(c.buf)))
			return n, c.err
		}
		if len(c.end) > 0 && !slices.Contains(c.end, c.last) {
			c.err = c.o.fail(c.req, c.status, fmt.Errorf("event stream ends after %q, not after one of %v", c.last, c.end))
			return n, c.err
		}
	}
	return n, err
}

func (c *sseChecker) Close() error { return c.body.Close() }

// scan checks every complete event in buf and drops it.
func (c *sseChecker) scan() error {
	for {
		i := bytes.Index(c.buf, []byte("\n\n"))
		if i < 0 {
			return nil
		}
		block := c.buf[:i]
		c.buf = c.buf[i+2:]
		var name string
		var data []string
		sc := bufio.NewScanner(bytes.NewReader(block))
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "": // a comment (keep-alive)
			case "event":
				name = value
			case "data":
				data = append(data, value)
			default:
				return fmt.Errorf("event stream: unexpected line %q", line)
			}
		}
		if name == "" && data == nil {
			continue // comments only
		}
		schema, ok := c.events[name]
		if !ok {
			return fmt.Errorf("event %q is not in x-sse-events", name)
		}
		var v any
		payload := strings.Join(data, "\n")
		if err := json.Unmarshal([]byte(payload), &v); err != nil {
			return fmt.Errorf("event %q: data is not JSON: %q", name, truncate([]byte(payload)))
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
			return fmt.Errorf("event %q: %w (data %s)", name, err, truncate([]byte(payload)))
		}
		c.last = name
		c.count++
	}
}

// Transport returns a RoundTripper that sends requests with base (nil:
// http.DefaultTransport at the time of the call) and checks every answer
// with Check. A mismatch is returned as the request's error (so the test
// that sent it fails where it sent it) and kept for Report.
func (o *OpenAPI) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if t, ok := base.(*transport); ok && t.o == o {
		return t
	}
	return &transport{o: o, base: base}
}

type transport struct {
	o    *OpenAPI
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if cerr := t.o.Check(req, res); cerr != nil {
		res.Body.Close()
		return nil, cerr
	}
	return res, nil
}

var (
	httpOnce sync.Once
	httpAPI  *OpenAPI
)

// ValidateHTTP makes every answer of a server under test ([OpenAPI.Serve])
// received through http.DefaultTransport (so http.DefaultClient, http.Get
// and clients built on the default transport) checked against
// docs/openapi.yaml, for the rest of the test binary, and returns the
// checker. Call it at the start of TestMain; end
// TestMain with os.Exit(api.Report(code)). It exits the process if the
// document does not load.
func ValidateHTTP() *OpenAPI {
	httpOnce.Do(func() {
		api, err := LoadOpenAPI()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		httpAPI = api
		http.DefaultTransport = api.Transport(http.DefaultTransport)
	})
	return httpAPI
}

// Failures returns the mismatches seen so far.
func (o *OpenAPI) Failures() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.failures)
}

// Stats returns how many answers were checked, on how many distinct
// documented operations, and how many preflights were skipped.
func (o *OpenAPI) Stats() (responses, operations, skipped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ops := map[string]bool{}
	for k := range o.seen {
		method, rest, _ := strings.Cut(k, " ")
		path, _, _ := strings.Cut(rest, " ")
		if path != "(undocumented)" {
			ops[method+" "+path] = true
		}
	}
	return o.responses, len(ops), o.skipped
}

// Unexercised returns the documented operations ("METHOD path") no checked
// answer belonged to.
func (o *OpenAPI) Unexercised() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[string]bool{}
	for k := range o.seen {
		method, rest, _ := strings.Cut(k, " ")
		path, _, _ := strings.Cut(rest, " ")
		if method == http.MethodHead {
			method = http.MethodGet
		}
		seen[method+" "+path] = true
	}
	var out []string
	for path, item := range o.doc.Paths.Map() {
		for method := range item.Operations() {
			if !seen[method+" "+path] {
				out = append(out, method+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Report ends a TestMain: given the code of m.Run, it prints every
// mismatch and returns 1 if there was one (else code). With -v, or
// CONTRACT_REPORT=1, it also prints what was checked.
func (o *OpenAPI) Report(code int) int {
	return o.report(os.Stderr, code, os.Getenv("CONTRACT_REPORT") != "" || verbose())
}

func (o *OpenAPI) report(w io.Writer, code int, stats bool) int {
	failures := o.Failures()
	responses, ops, skipped := o.Stats()
	if len(failures) > 0 {
		fmt.Fprintf(w, "\ncontract: %d of %d HTTP answers do not match docs/openapi.yaml:\n", len(failures), responses)
		for _, f := range failures {
			fmt.Fprintln(w, "  "+f)
		}
		if code == 0 {
			code = 1
		}
	}
	if stats {
		fmt.Fprintf(w, "contract: %d HTTP answers checked against docs/openapi.yaml, %d documented operations exercised, %d CORS preflights skipped\n",
			responses, ops, skipped)
		if un := o.Unexercised(); len(un) > 0 {
			fmt.Fprintf(w, "contract: operations no test here exercised: %s\n", strings.Join(un, ", "))
		}
	}
	return code
}

func verbose() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.v" || a == "-test.v=true" || strings.HasPrefix(a, "-test.v=test2json") {
			return true
		}
	}
	return false
}
