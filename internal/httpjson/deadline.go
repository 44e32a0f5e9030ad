package httpjson

import (
	"io"
	"net/http"
	"time"
)

// DefaultBodyTimeout is how long a request body may take to arrive, counted
// from the end of the request's headers, when [BodyDeadline] is given 0.
const DefaultBodyTimeout = 30 * time.Second

// BodyDeadline bounds the time a request body may take to arrive, so that
// clients trickling bodies cannot hold connections, goroutines and
// descriptors for ever (http.Server's ReadHeaderTimeout covers only the
// headers).
//
// For a request with a body it sets the connection's read deadline to
// timeout from now and answers with "Connection: close" until the body has
// been read to its end; then it lifts both. Only the body is bounded:
// responses are not, so a chat answer streamed as server-sent events may
// run for minutes. (net/http lifts a read deadline itself when it starts
// reading ahead after a body; lifting it here too keeps the rule in one
// place whatever the Go version.)
//
// A handler that answers without reading the body (a 401 before the body,
// a 413) leaves "Connection: close", and the deadline is moved to now when
// it returns. Without that, net/http would wait for the rest of the body
// before even sending the answer (it drains bodies to reuse connections),
// which is how unauthenticated slow bodies held connections with no answer.
//
// Requests without a body (GET /ws among them) are left alone; a hijacked
// connection gets its deadlines cleared by net/http. The body must be read
// on the handler's goroutine, as every handler here does: the response
// header is changed when the body ends.
func BodyDeadline(timeout time.Duration) func(http.Handler) http.Handler {
	if timeout <= 0 {
		timeout = DefaultBodyTimeout
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
				next.ServeHTTP(w, r) // not a net/http connection (a test recorder)
				return
			}
			header := w.Header()
			closing := r.ProtoMajor == 1 // HTTP/2 has no Connection header: a stream ends alone
			if closing {
				header.Set("Connection", "close")
			}
			body := &deadlineBody{ReadCloser: r.Body, ended: func() {
				if closing {
					header.Del("Connection")
				}
				_ = rc.SetReadDeadline(time.Time{})
			}}
			r.Body = body
			next.ServeHTTP(w, r)
			if !body.eof {
				_ = rc.SetReadDeadline(time.Now())
			}
		})
	}
}

// deadlineBody calls ended once when the body has been read to its end.
type deadlineBody struct {
	io.ReadCloser
	ended func()
	eof   bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.eof {
		b.eof = true
		b.ended()
	}
	return n, err
}
