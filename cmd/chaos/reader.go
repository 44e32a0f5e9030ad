package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// reader is one client that follows one user's changes across any number
// of sockets, the way a device does: it applies task.* events in seq
// order, resumes with ?since=<last applied seq> after every close, and
// keeps the task list it has rebuilt, to be compared with the database at
// the end. On each socket it checks hello-first, gaps (a seq skipped) and
// duplicates (a seq at or below one already applied on that socket).
type reader struct {
	h     *harness
	user  string
	inst  int // instance it dials next
	crowd bool

	lastSeq   atomic.Int64
	connected atomic.Int32 // index+1 of the instance it is connected to; 0: none

	mu    sync.Mutex
	tasks map[int64]taskView
}

// errGap ends a socket on which an event skipped a seq: the reader resumes
// from what it applied, so that the gap is counted and then repaired.
var errGap = errors.New("gap in seq")

func (r *reader) role() string {
	if r.crowd {
		return "crowd"
	}
	return "reader"
}

func (r *reader) run(ctx context.Context) {
	b := newBackoff()
	for ctx.Err() == nil {
		in := r.h.instances[r.inst]
		// Some sockets start over from a full snapshot (paged: the users
		// have --seed-tasks tasks), the others resume from the last seq.
		since := strconv.FormatInt(r.lastSeq.Load(), 10)
		if !r.crowd && rand.Float64() < r.h.cfg.SnapshotShare {
			since = "-1"
		}
		conn, err := r.h.dial(ctx, in, r.user, since, r.role())
		if err != nil {
			r.inst = 1 - r.inst
			sleepCtx(ctx, b.next())
			continue
		}
		r.connected.Store(int32(r.inst + 1))
		sctx, churned, cancel := ctx, func() bool { return false }, context.CancelFunc(func() {})
		if !r.crowd {
			sctx, churned, cancel = r.h.churnContext(ctx)
		}
		code, err := r.session(sctx, conn, since)
		cancel()
		r.connected.Store(0)
		conn.CloseNow()
		if ctx.Err() != nil {
			return
		}
		if churned() {
			r.h.churns.Add(1)
			r.inst = 1 - r.inst
			b.reset()
			continue
		}
		r.h.closes.add(r.role()+" "+code, 1)
		switch {
		case errors.Is(err, errGap):
			// Resume on the same instance.
		case code == "1001":
			// Going away: reconnect at once, to the other instance.
			r.inst = 1 - r.inst
			b.reset()
			continue
		default:
			r.inst = 1 - r.inst
		}
		sleepCtx(ctx, b.next())
	}
}

// session reads one socket until it ends and returns its close code.
func (r *reader) session(ctx context.Context, conn *websocket.Conn, since string) (string, error) {
	where := fmt.Sprintf("%s on %s (since=%s)", r.user, r.h.instances[r.inst].name, since)
	check := helloCheck{h: r.h, role: r.role(), where: where}
	defer check.done()
	dups := 0
	var snap []taskView
	snapOpen := false
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return closeCode(err), err
		}
		if typ != websocket.MessageText {
			r.h.anomalies.add("binary frame from the server", 1)
			continue
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			r.h.anomalies.add("undecodable frame from the server", 1)
			continue
		}
		check.see(&f)
		switch f.Type {
		case "task.created", "task.updated", "task.deleted":
			if snapOpen {
				r.h.anomalies.add("task event between the pages of a snapshot", 1)
			}
			if f.Seq == nil {
				r.h.anomalies.add("task event without seq", 1)
				continue
			}
			seq, last := *f.Seq, r.lastSeq.Load()
			switch {
			case seq <= last:
				r.h.readerDups.Add(1)
				if dups++; dups == 1 { // the first of this socket
					r.h.note("dup", "%s socket %s: seq %d again after %d (frame %d)", r.role(), where, seq, last, check.frames)
				}
				continue
			case seq > last+1:
				r.h.readerGaps.Add(1)
				r.h.readerMissing.Add(seq - last - 1)
				r.h.note("gap", "%s socket %s: seq %d after %d (frame %d): gap", r.role(), where, seq, last, check.frames)
				return "gap", fmt.Errorf("%w: %d after %d", errGap, seq, last)
			}
			r.apply(&f)
			r.lastSeq.Store(seq)
		case "snapshot":
			page, more := 0, false
			if f.Page != nil {
				page = *f.Page
			}
			if f.More != nil {
				more = *f.More
			}
			if page == 0 {
				snap, snapOpen = nil, true // a new snapshot replaces an unfinished one
			} else if !snapOpen {
				r.h.anomalies.add("snapshot page without its page 0", 1)
				continue
			}
			snap = append(snap, f.Tasks...)
			r.h.snapshotPages.Add(1)
			if !more {
				r.replace(snap)
				if f.Seq != nil {
					r.lastSeq.Store(*f.Seq)
				}
				snap, snapOpen = nil, false
				r.h.snapshots.Add(1)
			}
		}
	}
}

func (r *reader) apply(f *frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch f.Type {
	case "task.deleted":
		id := f.TaskID
		if id == 0 && f.Task != nil {
			id = f.Task.ID
		}
		delete(r.tasks, id)
	default:
		if f.Task == nil {
			r.h.anomalies.add(f.Type+" without task", 1)
			return
		}
		r.tasks[f.Task.ID] = *f.Task
	}
}

func (r *reader) replace(list []taskView) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = make(map[int64]taskView, len(list))
	for _, t := range list {
		r.tasks[t.ID] = t
	}
}

// view returns a copy of the rebuilt task list.
func (r *reader) view() map[int64]taskView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int64]taskView, len(r.tasks))
	for k, v := range r.tasks {
		out[k] = v
	}
	return out
}
