package realtime

import (
	"context"
	"slices"
	"sync"
)

// Group reads of the change log for catch-up.
//
// When an instance dies, every socket it held reconnects to the others
// within a second or two, each with ?since=: a new socket reads the user's
// current seq (before hello), checks its since against it, and replays
// what it missed. One query each was three queries per socket, all at
// once: in the reconnect storm of docs/BENCHMARKS.md (scenario f, 10,000
// sockets) they filled the connection pool for seconds, and writes waited
// behind them until they timed out.
//
// So these reads are grouped, the way tasks/commit.go groups mutations:
// whoever arrives while fewer than maxQueries group reads run becomes a
// leader and reads, in one query, for itself and every request queued at
// that moment (up to maxGroup; the devices of one user resuming from the
// same seq share one range). A leader that finishes hands leadership to
// the oldest queued request. There is no timer and no background
// goroutine: a lone read runs at once, with the same query as before, so
// latency at low load is unchanged; groups form only when reads queue up
// behind running ones. maxQueries also bounds the pool connections
// catch-up takes, which leaves the rest to writes.

// Defaults of the group reader.
const (
	// DefaultCatchupQueries bounds the catch-up queries of an instance
	// running at once.
	DefaultCatchupQueries = 4
	// catchupGroup is the most requests one query serves.
	catchupGroup = 256
)

// grouper runs requests in groups: the leader pattern above, for any
// request type. run answers every request of a group (setting its result
// fields); it is called by at most max goroutines at once.
//
// Urgent requests go before the others in the queue: a session that has
// started (registered, replaying) is finished before new sockets get their
// first read. Served first come, first served, every socket of a storm
// would need its three reads to go round the whole queue three times, and
// they would all become current together at the end.
type grouper[T any] struct {
	max, maxGroup int
	run           func(ctx context.Context, group []*T)

	mu      sync.Mutex
	queue   []*groupEntry[T] // the urgent ones first
	urgent  int              // how many of queue are urgent
	leaders int
}

type groupEntry[T any] struct {
	req *T
	// lead: the receiver of wake is to lead the next group, not a result.
	lead bool
	wake chan struct{} // buffered 1: a wake never blocks
}

// do runs req, alone or in a group, and returns once it has run (or, if
// it was still queued, once ctx ended: then it returns false).
func (g *grouper[T]) do(ctx context.Context, req *T, urgent bool) bool {
	e := &groupEntry[T]{req: req, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	if g.leaders < g.max {
		g.leaders++
		g.mu.Unlock()
		g.lead(ctx, e)
		return true
	}
	if urgent {
		g.queue = slices.Insert(g.queue, g.urgent, e)
		g.urgent++
	} else {
		g.queue = append(g.queue, e)
	}
	g.mu.Unlock()
	select {
	case <-e.wake:
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.queue, e); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			if i < g.urgent {
				g.urgent--
			}
			g.mu.Unlock()
			return false
		}
		g.mu.Unlock()
		// Already taken into a group, or made a leader: the others in it
		// count on this goroutine, so see it through (run has its own
		// timeout).
		<-e.wake
	}
	if e.lead {
		g.lead(ctx, e)
	}
	return true
}

// lead runs one group: e and what is queued, then hands leadership on.
func (g *grouper[T]) lead(ctx context.Context, e *groupEntry[T]) {
	g.mu.Lock()
	n := min(len(g.queue), g.maxGroup-1)
	group := make([]*T, 0, n+1)
	group = append(group, e.req)
	woken := slices.Clone(g.queue[:n])
	for _, o := range woken {
		group = append(group, o.req)
	}
	g.queue = slices.Delete(g.queue, 0, n)
	g.urgent = max(0, g.urgent-n)
	g.mu.Unlock()

	// The group serves other sessions too: one caller's end must not fail
	// it for the rest.
	g.run(context.WithoutCancel(ctx), group)
	for _, o := range woken {
		o.lead = false
		o.wake <- struct{}{}
	}

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leaders--
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.queue = slices.Delete(g.queue, 0, 1)
	g.urgent = max(0, g.urgent-1)
	g.mu.Unlock()
	next.lead = true
	next.wake <- struct{}{}
}

// groupReader groups catch-up reads.
type groupReader struct {
	log     changeReader
	metrics *Metrics
	g       grouper[readReq]
}

// readReq is one current-seq lookup (seqOnly) or one range read.
type readReq struct {
	seqOnly bool
	rng     logRange

	// Set by run.
	seq    int64
	events []*Event
	err    error
}

func newGroupReader(log changeReader, metrics *Metrics, maxQueries int) *groupReader {
	if maxQueries <= 0 {
		maxQueries = DefaultCatchupQueries
	}
	r := &groupReader{log: log, metrics: metrics}
	r.g = grouper[readReq]{max: maxQueries, maxGroup: catchupGroup, run: r.run}
	return r
}

// currentSeq returns user's current seq. started: for a session already
// registered (its check after registration), which goes before new
// sockets' reads.
func (g *groupReader) currentSeq(ctx context.Context, user string, started bool) (int64, error) {
	r := &readReq{seqOnly: true, rng: logRange{User: user}}
	if !g.g.do(ctx, r, started) {
		return 0, ctx.Err()
	}
	return r.seq, r.err
}

// read returns up to fillPage of user's events with after < seq <= upTo,
// for a session already started: it goes before new sockets' reads.
func (g *groupReader) read(ctx context.Context, user string, after, upTo int64) ([]*Event, error) {
	r := &readReq{rng: logRange{User: user, After: after, UpTo: upTo}}
	if !g.g.do(ctx, r, true) {
		return nil, ctx.Err()
	}
	return r.events, r.err
}

// run answers every request of group: at most one query for the seqs and
// one for the ranges. A group of one uses the single-user queries.
func (g *groupReader) run(ctx context.Context, group []*readReq) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var seqs, reads []*readReq
	for _, r := range group {
		if r.seqOnly {
			seqs = append(seqs, r)
		} else {
			reads = append(reads, r)
		}
	}
	g.metrics.catchupRequests.Add(float64(len(group)))
	switch len(seqs) {
	case 0:
	case 1:
		g.metrics.catchupQueries.Inc()
		seqs[0].seq, seqs[0].err = g.log.CurrentSeq(ctx, seqs[0].rng.User)
	default:
		g.metrics.catchupQueries.Inc()
		users := make([]string, 0, len(seqs))
		seen := make(map[string]bool, len(seqs))
		for _, r := range seqs {
			if !seen[r.rng.User] {
				seen[r.rng.User] = true
				users = append(users, r.rng.User)
			}
		}
		cur, err := g.log.CurrentSeqs(ctx, users)
		for _, r := range seqs {
			r.seq, r.err = cur[r.rng.User], err
		}
	}
	switch len(reads) {
	case 0:
	case 1:
		g.metrics.catchupQueries.Inc()
		r := reads[0]
		r.events, r.err = g.log.Read(ctx, r.rng.User, r.rng.After, r.rng.UpTo, fillPage)
	default:
		// The devices of one user resuming from the same seq share a range.
		g.metrics.catchupQueries.Inc()
		at := make(map[logRange]int, len(reads))
		ranges := make([]logRange, 0, len(reads))
		for _, r := range reads {
			if _, ok := at[r.rng]; !ok {
				at[r.rng] = len(ranges)
				ranges = append(ranges, r.rng)
			}
		}
		out, err := g.log.ReadRanges(ctx, ranges, fillPage)
		for _, r := range reads {
			if r.err = err; err == nil {
				r.events = out[at[r.rng]]
			}
		}
	}
}
