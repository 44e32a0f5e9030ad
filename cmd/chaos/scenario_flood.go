package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"tasksync/internal/procstat"
)

// floodGrowthLimit is the promise of issue 9 row 1: the server's peak RSS
// grows by less than this under the snapshot flood.
const floodGrowthLimit = 128 << 20

// floodEvery is how often each flooding socket asks for a snapshot.
const floodEvery = 100 * time.Millisecond

// floodFinalWait bounds the final reads of all the flood's sockets (about
// 30 s for 32 sockets of 20,000 tasks here): long, since the machine's
// speed is not what is judged.
const floodFinalWait = 3 * time.Minute

// scenarioFlood is issue 9 row 1. One user with --flood-tasks tasks
// (inserted with SQL, about 330 bytes of JSON each, as in the issue's
// repro); --flood-sockets sockets of that user on a fresh instance each
// send {"type":"sync","since":-1} every 100 ms and never read, for
// --flood-for. A socket the server lets go of (allowed: 4008, or dropped
// after WS_WRITE_TIMEOUT) is replaced by a new one that carries on, as an
// attacker would. The server's VmRSS before and its peak (VmHWM, reset
// with /proc/PID/clear_refs just before the flood) must differ by less
// than 128 MiB. Then every socket (a new one when the server had dropped
// it) reads what it was sent, in order, asks for the list once more, and
// must end with exactly the table's tasks.
func (h *harness) scenarioFlood(ctx context.Context, sr *scenarioResult) error {
	sz := h.cfg.Sizes
	user := h.scenarioUser("flood")
	if err := h.mintTokens(ctx, user); err != nil {
		return err
	}
	pool, err := h.scenarioPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO tasks (user_id, title, description, priority, tags)
		SELECT $1, 'flood task ' || g, repeat('a snapshot of this user is asked for ten times a second ', 3), 'medium', '{flood,chaos}'
		FROM generate_series(1, $2) AS g`, user, sz.FloodTasks); err != nil {
		return fmt.Errorf("insert the flood user's tasks: %w", err)
	}
	want, err := h.loadTasks(ctx, pool, user)
	if err != nil {
		return err
	}

	in, err := h.scenarioInstance(ctx, "flood")
	if err != nil {
		return err
	}
	defer h.endInstance(sr, in)
	pid := in.pid()

	socks := make([]*floodSocket, sz.FloodSockets)
	for i := range socks {
		conn, err := h.dial(ctx, in, user, noSince, "flood")
		if err != nil {
			return err
		}
		socks[i] = &floodSocket{i: i, conn: conn}
	}
	defer func() {
		for _, s := range socks {
			if s.conn != nil {
				s.conn.CloseNow()
			}
		}
	}()

	before, err := procstat.Read(pid)
	if err != nil {
		return err
	}
	// VmHWM counts from the process's start; writing 5 to clear_refs
	// resets it to the current RSS (Linux 4.0+), so that the peak is the
	// flood's. Without it the start-up peak is included, which can only
	// overstate the growth.
	hwmFrom := "reset with clear_refs when the flood starts"
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		hwmFrom = "since the process started (clear_refs: " + err.Error() + ")"
	}

	// The flood, and the resident size sampled meanwhile and through the
	// final reads: VmHWM is the kernel's own peak, the samples a check on
	// it (the kernel updates its high-water mark lazily).
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampledPeak atomic.Int64
	var samplerDone sync.WaitGroup
	samplerDone.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := procstat.Read(pid); err == nil && m.RSS > sampledPeak.Load() {
				sampledPeak.Store(m.RSS)
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	defer func() { stopSampling(); samplerDone.Wait() }()
	var floodCloses, finalCloses counters
	var drains sync.WaitGroup
	until := time.Now().Add(sz.FloodFor)
	var flooders sync.WaitGroup
	for _, s := range socks {
		flooders.Go(func() { h.flood(ctx, in, user, s, until, &floodCloses, &drains) })
	}
	flooders.Wait()
	afterFlood, err := procstat.Read(pid)
	if err != nil {
		return err
	}
	sampledFlood := sampledPeak.Load()
	peakFlood := max(afterFlood.HWM, sampledFlood)

	// Every socket ends with the list.
	var good atomic.Int64
	var helloLate, oldPages atomic.Int64
	var finishers sync.WaitGroup
	finalCtx, cancelFinal := context.WithTimeout(ctx, floodFinalWait)
	defer cancelFinal()
	for _, s := range socks {
		finishers.Go(func() {
			if h.floodFinal(finalCtx, in, user, s, want, &finalCloses, &helloLate, &oldPages, sr) {
				good.Add(1)
			}
		})
	}
	finishers.Wait()
	drains.Wait()
	end, err := procstat.Read(pid)
	if err != nil {
		return err
	}
	peakEnd := max(peakFlood, end.HWM, sampledPeak.Load())

	sent, dropped := 0, 0
	for _, s := range socks {
		sent += s.sent
		dropped += s.drops
	}
	growth := peakFlood - before.RSS
	growthEnd := peakEnd - before.RSS
	sr.row("tasks of the flooding user", len(want), fmt.Sprintf("%d sockets of that user on one fresh instance", len(socks)))
	sr.row("sync since=-1 frames sent", sent, fmt.Sprintf("every %s per socket for %s, never reading", floodEvery, sz.FloodFor))
	sr.row("RSS before the flood (VmRSS)", mib(before.RSS), "sockets open, idle")
	sr.row("peak RSS during the flood", mib(peakFlood), fmt.Sprintf("VmHWM %s: %s; VmRSS sampled every 100 ms: at most %s", hwmFrom, mib(afterFlood.HWM), mib(sampledFlood)))
	sr.row("peak RSS growth", mib(growth), fmt.Sprintf("must stay under %s", mib(floodGrowthLimit)))
	sr.row("peak RSS incl. the final reads", mib(peakEnd), fmt.Sprintf("growth %s (every socket then reads its whole list); RSS at the end %s", mib(growthEnd), mib(end.RSS)))
	sr.row("sockets let go by the server", dropped, "during the flood (allowed: it never reads); close codes seen: "+kv(floodCloses.snapshot()))
	sr.row("flood snapshot pages read after", oldPages.Load(), "pages of the flood's snapshots found queued on the sockets, read before the final list")
	sr.row("closes while reading the list", sum(finalCloses.snapshot()), kv(finalCloses.snapshot()))
	sr.row("sockets ending with the exact list", fmt.Sprintf("%d/%d", good.Load(), len(socks)), "sync since=-1, paged snapshot collected, compared with SELECT ... FROM tasks")
	sr.figure("tasks", len(want))
	sr.figure("sockets", len(socks))
	sr.figure("sync_frames_sent", sent)
	sr.figure("rss_before_bytes", before.RSS)
	sr.figure("peak_flood_bytes", peakFlood)
	sr.figure("peak_end_bytes", peakEnd)
	sr.figure("growth_bytes", growth)
	sr.figure("growth_end_bytes", growthEnd)
	sr.figure("hwm_reset", hwmFrom)
	sr.figure("sockets_dropped_during_flood", dropped)
	sr.figure("close_codes_during_flood", floodCloses.snapshot())
	sr.figure("close_codes_final", finalCloses.snapshot())
	sr.figure("flood_pages_read_after", oldPages.Load())
	sr.figure("sockets_with_exact_list", good.Load())

	if growth >= floodGrowthLimit {
		sr.fail("peak RSS grew by %s during the flood (before %s, peak %s), not under %s", mib(growth), mib(before.RSS), mib(peakFlood), mib(floodGrowthLimit))
	} else if growthEnd >= floodGrowthLimit {
		sr.fail("peak RSS grew by %s by the end (the final reads; flood alone %s), not under %s", mib(growthEnd), mib(growth), mib(floodGrowthLimit))
	}
	if n := int(good.Load()); n != len(socks) {
		sr.fail("%d of %d sockets did not end with exactly the task list", len(socks)-n, len(socks))
	}
	if n := helloLate.Load(); n > 0 {
		sr.fail("hello not the first frame on %d flood sockets", n)
	}
	return nil
}

// floodSocket is one socket slot of the flood: the socket, replaced when
// the server lets go of it.
type floodSocket struct {
	i     int
	conn  *websocket.Conn
	sent  int
	drops int
}

// flood asks for a full snapshot every floodEvery until until, never
// reading. When a write fails the server has let go of the socket: what it
// had sent is read in the background to learn the close code, and a new
// socket carries on.
func (h *harness) flood(ctx context.Context, in *instance, user string, s *floodSocket, until time.Time, closes *counters, drains *sync.WaitGroup) {
	t := time.NewTicker(floodEvery)
	defer t.Stop()
	for n := 0; time.Now().Before(until) && ctx.Err() == nil; n++ {
		frame := fmt.Appendf(nil, `{"type":"sync","id":"flood-%d-%d","since":-1}`, s.i, n)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.conn.Write(wctx, websocket.MessageText, frame)
		timedOut := errors.Is(wctx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			s.sent++
		} else {
			s.drops++
			old := s.conn
			if timedOut && ctx.Err() == nil {
				// The server did not take a frame for 5 s: it stopped
				// reading this socket, which the promise rules out.
				closes.add("our write timed out (the server stopped reading)", 1)
				old.CloseNow()
			} else {
				drains.Go(func() { closes.add(drainClose(ctx, old), 1) })
			}
			s.conn = nil
			b := newBackoff()
			for s.conn == nil && time.Now().Before(until) && ctx.Err() == nil {
				if conn, err := h.dial(ctx, in, user, noSince, "flood"); err == nil {
					s.conn = conn
				} else {
					sleepCtx(ctx, b.next())
				}
			}
			if s.conn == nil { // out of time: the final phase dials one
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// drainClose reads a socket the server let go of until it ends, and says
// how it ended (its close code, "1006" for a dropped connection).
func drainClose(ctx context.Context, conn *websocket.Conn) string {
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			if ctx.Err() != nil {
				return "still open after 30s of reading"
			}
			return closeCode(err)
		}
	}
}

// floodFinal reads one flood socket in order (hello must be its first
// frame; the pages of old snapshots follow), asks for the list with a sync
// of its own id and collects that snapshot's pages; a socket that ends on
// the way is replaced and asked again. It reports whether the list equals
// want.
func (h *harness) floodFinal(ctx context.Context, in *instance, user string, s *floodSocket, want map[int64]taskView, closes *counters, helloLate, oldPages *atomic.Int64, sr *scenarioResult) bool {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if s.conn == nil {
			conn, err := h.dial(ctx, in, user, noSince, "flood")
			if err != nil {
				sleepCtx(ctx, time.Second)
				continue
			}
			s.conn = conn
		}
		id := fmt.Sprintf("final-%d-%d", s.i, attempt)
		got, code, err := collectSnapshot(ctx, s.conn, id, oldPages)
		if err != nil {
			if code == "" { // not a close: the list itself is wrong
				sr.example("flood socket %d: %v", s.i, err)
				return false
			}
			if code == "hello" {
				helloLate.Add(1)
				sr.example("flood socket %d: %v", s.i, err)
				return false
			}
			if ctx.Err() != nil {
				sr.example("flood socket %d: no complete snapshot within %s (%v)", s.i, floodFinalWait, err)
				return false
			}
			closes.add(code, 1)
			s.conn.CloseNow()
			s.conn = nil
			continue
		}
		if diff := diffTasks(got, want); diff != "" {
			sr.example("flood socket %d: snapshot %s differs from the table: %s", s.i, id, diff)
			return false
		}
		return true
	}
	return false
}

// collectSnapshot sends a sync since=-1 with id on conn, then reads every
// frame in order until the snapshot answering id is complete. The first
// frame of the socket must be hello (code "hello" when not). A close comes
// back as its code with the error; a malformed snapshot as an error with
// no code.
func collectSnapshot(ctx context.Context, conn *websocket.Conn, id string, skipped *atomic.Int64) ([]taskView, string, error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := conn.Write(wctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"sync","id":%q,"since":-1}`, id))
	cancel()
	if err != nil {
		// Closed under us: reading tells how.
		_, _, rerr := conn.Read(ctx)
		return nil, closeCode(rerr), fmt.Errorf("send sync: %w", err)
	}
	quoted := strconv.Quote(id)
	var got []taskView
	next, frames := 0, 0
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return nil, closeCode(err), err
		}
		frames++
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, "", fmt.Errorf("undecodable frame %d: %w", frames, err)
		}
		if frames == 1 && f.Type != "hello" {
			return nil, "hello", fmt.Errorf("first frame %s, not hello", f.Type)
		}
		if f.Type != "snapshot" || string(f.ID) != quoted {
			if skipped != nil && f.Type == "snapshot" {
				skipped.Add(1)
			}
			continue // pages of snapshots asked for during the flood, and the rest
		}
		page, more := 0, false
		if f.Page != nil {
			page = *f.Page
		}
		if f.More != nil {
			more = *f.More
		}
		if page != next {
			return nil, "", fmt.Errorf("snapshot %s: page %d where %d was due", id, page, next)
		}
		next++
		got = append(got, f.Tasks...)
		if !more {
			return got, "", nil
		}
	}
}

// diffTasks says how a list differs from the table ("" when equal).
func diffTasks(got []taskView, want map[int64]taskView) string {
	seen := make(map[int64]bool, len(got))
	dup, extra, differ := 0, 0, 0
	for _, t := range got {
		if seen[t.ID] {
			dup++
			continue
		}
		seen[t.ID] = true
		w, ok := want[t.ID]
		switch {
		case !ok:
			extra++
		case w != t:
			differ++
		}
	}
	missing := 0
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if !seen[id] {
			missing++
		}
	}
	if dup+extra+differ+missing == 0 {
		return ""
	}
	return fmt.Sprintf("%d tasks (table %d): %d missing, %d extra, %d different, %d twice", len(got), len(want), missing, extra, differ, dup)
}
