package realtime

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is exponential backoff with jitter and a cancellable wait.
// It is not safe for concurrent use; each loop owns its own.
type backoff struct {
	base, max time.Duration
	attempt   int
}

func newBackoff(base, max time.Duration) *backoff { return &backoff{base: base, max: max} }

// next returns the next delay: base·2^attempt capped at max, with "equal
// jitter" (a random point in the upper half) so that many instances
// reconnecting at once spread out.
func (b *backoff) next() time.Duration {
	d := b.base << min(b.attempt, 20)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// wait sleeps for the next delay; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
