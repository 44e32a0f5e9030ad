package contract

import (
	"fmt"
	"sync"
	"testing"
)

// ErrorRecorder is a testing.TB whose Errorf is recorded instead of failing
// the test: for tests that prove a check fails (hand it to the code under
// test, then look at Errors).
type ErrorRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

// Errorf records the message.
func (r *ErrorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Errors returns the messages recorded so far.
func (r *ErrorRecorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}
