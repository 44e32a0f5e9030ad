package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"tasksync/auth"
	"tasksync/internal/reqlog"
)

// `loadgen resume`: a socket that missed N events comes back; how long
// until it is current. Each round uses a fresh user:
//
//  1. the resuming device connects once and notes where it is (tasksync:
//     hello's seq; Centrifugo: the subscribe reply's epoch and offset),
//     then goes away;
//  2. another device of the user writes N changes (tasksync: task.create,
//     each a Postgres commit; Centrifugo: publish into the user's channel),
//     at most resumeInFlight at a time, and waits for every reply;
//  3. the clock starts; the first device dials again and asks for what it
//     missed (tasksync: ?since=<seq>; Centrifugo: subscribe with
//     recover, offset and epoch); the clock stops when the N-th missed
//     change has arrived. Dial, upgrade and authentication are inside the
//     figure for both. With --repeat R, step 3 is done R times, each by a
//     new socket missing the same changes, and each is a sample: writing
//     the changes takes ~100 times longer than resuming, and a few rounds
//     alone gave medians that moved by a fifth from run to run.
//
// A change that does not arrive, or arrives twice or out of order, is
// counted in missed (must be 0). The resuming socket decodes every change
// in full on both (a client applies what it receives); the broadcast
// scenario reads prefixes only, to keep the load generator cheap.

// resumeInFlight bounds the writer's outstanding changes: half tasksync's
// default per-socket limit (max_in_flight 8), since the server counts a
// request until its handler returns, a moment after the reply is out. A
// rate_limited refusal is still possible and is sent again after its
// retry_after_ms (the writes are not timed).
const resumeInFlight = 4

type resumeConfig struct {
	Label  string `json:"label"`
	Proto  string `json:"proto"`
	URL    string `json:"url"`
	Events int    `json:"events"`
	Rounds int    `json:"rounds"`
	Repeat int    `json:"repeat"`
	Batch  bool   `json:"batch,omitempty"`
	secret string // not recorded
	json   string // not recorded
}

// roundsSummary is a duration over the resumes (every resume of every
// round), in milliseconds.
type roundsSummary struct {
	MedianMS float64   `json:"median_ms"`
	MinMS    float64   `json:"min_ms"`
	MaxMS    float64   `json:"max_ms"`
	Rounds   []float64 `json:"rounds_ms"`
}

func (r *roundsSummary) add(d time.Duration) { r.Rounds = append(r.Rounds, ms(d)) }

func (r *roundsSummary) finish() {
	rs := slices.Clone(r.Rounds)
	if len(rs) == 0 {
		return
	}
	slices.Sort(rs)
	r.MinMS, r.MaxMS = rs[0], rs[len(rs)-1]
	r.MedianMS = rs[len(rs)/2]
	if len(rs)%2 == 0 {
		r.MedianMS = math.Round((rs[len(rs)/2-1]+rs[len(rs)/2])/2*1000) / 1000
	}
}

type resumeResult struct {
	Tool    string       `json:"tool"`
	Label   string       `json:"label"`
	Run     string       `json:"run"`
	Started time.Time    `json:"started"`
	Config  resumeConfig `json:"config"`
	// TimeToCurrent is over the resumes: from the dial to the last missed
	// change received. Where the time goes: TimeToGreeting is from the
	// dial to hello (tasksync) or the subscribe reply (Centrifugo: its
	// recovered publications come inside it), TimeToFirst to the first
	// missed change.
	TimeToCurrent  roundsSummary `json:"time_to_current"`
	TimeToGreeting roundsSummary `json:"time_to_greeting"`
	TimeToFirst    roundsSummary `json:"time_to_first_change"`
	// WriteSeconds is how long step 2 took in each round (not measured
	// against anything; it tells the writes were done before the clock).
	WriteSeconds []float64 `json:"write_seconds"`
	Received     int64     `json:"received"`
	Missed       int64     `json:"missed"`
	FrameBytes   int64     `json:"replay_bytes"`
	Errors       []string  `json:"errors,omitempty"`
}

func runResume(ctx context.Context, args []string, stdout io.Writer) error {
	var c resumeConfig
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	fs.StringVar(&c.Label, "label", "", "scenario name recorded in the JSON")
	fs.StringVar(&c.Proto, "proto", protoTasksync, "tasksync (--url ws://HOST:PORT/ws) or centrifugo (--url ws://HOST:PORT/connection/websocket)")
	fs.StringVar(&c.URL, "url", "", "socket URL: loopback only")
	fs.IntVar(&c.Events, "events", 1000, "changes missed by the resuming socket")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds, each with a fresh user")
	fs.IntVar(&c.Repeat, "repeat", 1, "resumes a round, each a new socket missing the same changes (every one is a sample)")
	fs.BoolVar(&c.Batch, "batch", false, "tasksync: resume with ?batch=1 (several frames a message, one a line), as the SDK does")
	fs.StringVar(&c.secret, "secret", os.Getenv("AUTH_JWT_SECRET"), "HS256 secret the server verifies (default $AUTH_JWT_SECRET)")
	fs.StringVar(&c.json, "json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case c.Proto != protoTasksync && c.Proto != protoCentrifugo:
		return fmt.Errorf("--proto must be %s or %s", protoTasksync, protoCentrifugo)
	case c.URL == "":
		return errors.New("--url is required")
	case c.Events < 1 || c.Events > 100_000 || c.Rounds < 1 || c.Rounds > 100 || c.Repeat < 1 || c.Repeat > 1000:
		return errors.New("--events must be in [1, 100000], --rounds in [1, 100] and --repeat in [1, 1000]")
	case len(c.secret) < auth.MinSecretBytes:
		return fmt.Errorf("--secret (or AUTH_JWT_SECRET) must be at least %d bytes", auth.MinSecretBytes)
	}
	if err := checkLoopbackURL(c.URL); err != nil {
		return err
	}
	res := &resumeResult{Tool: "loadgen resume", Label: c.Label, Run: strings.ToLower(reqlog.NewID()[:10]), Started: time.Now().UTC(), Config: c}
	var firstErr error
	for r := 0; r < c.Rounds; r++ {
		user := fmt.Sprintf("lg-%s-r%d", res.Run, r)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		rr, err := resumeRound(rctx, c, user)
		cancel()
		res.Received += rr.received
		res.Missed += rr.missed
		res.FrameBytes += rr.bytes
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("round %d: %v", r, err))
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		res.WriteSeconds = append(res.WriteSeconds, round3(rr.write.Seconds()))
		for _, sm := range rr.samples {
			res.TimeToCurrent.add(sm.current)
			res.TimeToGreeting.add(sm.greeted)
			res.TimeToFirst.add(sm.first)
		}
	}
	res.TimeToCurrent.finish()
	res.TimeToGreeting.finish()
	res.TimeToFirst.finish()
	res.print(stdout)
	if err := writeJSON(c.json, res); err != nil {
		return err
	}
	return firstErr
}

func (r *resumeResult) print(w io.Writer) {
	proto := r.Config.Proto
	if r.Config.Batch {
		proto += ", batch=1"
	}
	fmt.Fprintf(w, "== loadgen resume %s (run %s, %s)\n", r.Label, r.Run, proto)
	samples := r.TimeToCurrent.Rounds
	if len(samples) > 10 {
		samples = samples[:10] // the first ten; all are in the JSON
	}
	fmt.Fprintf(w, "time to current after missing %d changes: median %.3f ms (%.3f..%.3f) over %d resumes (%d rounds x %d) %v\n",
		r.Config.Events, r.TimeToCurrent.MedianMS, r.TimeToCurrent.MinMS, r.TimeToCurrent.MaxMS, len(r.TimeToCurrent.Rounds),
		r.Config.Rounds, r.Config.Repeat, samples)
	fmt.Fprintf(w, "  of which: dial to greeting median %.3f ms, dial to first missed change %.3f ms\n",
		r.TimeToGreeting.MedianMS, r.TimeToFirst.MedianMS)
	fmt.Fprintf(w, "received %d changes (%d B of frames), missed %d; writes took %v s\n", r.Received, r.FrameBytes, r.Missed, r.WriteSeconds)
	fmt.Fprintf(w, "errors       %d %v\n", len(r.Errors), r.Errors)
}

type roundResult struct {
	write           time.Duration
	samples         []resumeSample // one per resume of the round
	received, bytes int64
	missed          int64
}

// resumeSample is one resume: dial to greeting, to the first missed
// change, and to the last.
type resumeSample struct{ greeted, first, current time.Duration }

// lineConn reads a socket line by line: a Centrifugo message may hold
// several replies, one a line, and so may a tasksync message with
// ?batch=1; without it a tasksync message is one line.
type lineConn struct {
	ws    *websocket.Conn
	lines [][]byte
	bytes int64
	pong  bool
}

func dialLine(ctx context.Context, url string, h http.Header) (*lineConn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(64 << 20)
	return &lineConn{ws: ws}, nil
}

func (c *lineConn) write(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// next returns the next non-empty line; it answers Centrifugo's pings.
func (c *lineConn) next(ctx context.Context) ([]byte, error) {
	for {
		for len(c.lines) > 0 {
			l := bytes.TrimSpace(c.lines[0])
			c.lines = c.lines[1:]
			if len(l) == 0 {
				continue
			}
			if bytes.Equal(l, cfPing) {
				if c.pong {
					if err := c.write(ctx, cfPing); err != nil {
						return nil, err
					}
				}
				continue
			}
			return l, nil
		}
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		c.bytes += int64(len(b))
		c.lines = bytes.Split(b, []byte{'\n'})
	}
}

func (c *lineConn) close() { _ = c.ws.Close(websocket.StatusNormalClosure, "") }

func resumeRound(ctx context.Context, c resumeConfig, user string) (roundResult, error) {
	token, err := auth.IssueHS256([]byte(c.secret), user, time.Hour, "", "")
	if err != nil {
		return roundResult{}, err
	}
	if c.Proto == protoCentrifugo {
		return cfResumeRound(ctx, c, user, token)
	}
	return tsResumeRound(ctx, c, token)
}

// ---------------------------------------------------------------- tasksync

func tsDial(ctx context.Context, url, token string, since int64, batch bool) (*lineConn, int64, error) {
	u := url + "?device=loadgen-resume"
	if batch {
		u += "&batch=1"
	}
	if since >= 0 {
		u += "&since=" + strconv.FormatInt(since, 10)
	}
	lc, err := dialLine(ctx, u, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, 0, err
	}
	l, err := lc.next(ctx)
	if err != nil {
		lc.close()
		return nil, 0, err
	}
	if !bytes.HasPrefix(l, prefixHello) {
		lc.close()
		return nil, 0, fmt.Errorf("first frame is not hello: %.200s", l)
	}
	seq, _ := intField(l, `"seq":`)
	return lc, seq, nil
}

func tsResumeRound(ctx context.Context, c resumeConfig, token string) (roundResult, error) {
	var rr roundResult
	a, s0, err := tsDial(ctx, c.URL, token, -1, false)
	if err != nil {
		return rr, fmt.Errorf("first connect: %w", err)
	}
	a.close()

	start := time.Now()
	w, _, err := tsDial(ctx, c.URL, token, -1, false)
	if err != nil {
		return rr, fmt.Errorf("writer: %w", err)
	}
	create := func(id int64) error {
		f := fmt.Sprintf(`{"type":"task.create","id":%d,"task":{"title":"resume %d","description":""}}`, id, id)
		return w.write(ctx, []byte(f))
	}
	sent, replied := 0, 0
	for replied < c.Events {
		for sent < c.Events && sent-replied < resumeInFlight {
			if err := create(int64(sent + 1)); err != nil {
				w.close()
				return rr, fmt.Errorf("writer: %w", err)
			}
			sent++
		}
		l, err := w.next(ctx)
		if err != nil {
			return rr, fmt.Errorf("writer: %w", err)
		}
		switch {
		case bytes.HasPrefix(l, prefixReply):
			replied++
		case bytes.HasPrefix(l, prefixError) && bytes.Contains(l, []byte(`"code":"rate_limited"`)):
			id, _ := intField(l, `"id":`)
			wait, _ := intField(l, `"retry_after_ms":`)
			if !sleepCtx(ctx, time.Duration(wait)*time.Millisecond) {
				w.close()
				return rr, ctx.Err()
			}
			if err := create(id); err != nil {
				w.close()
				return rr, fmt.Errorf("writer: %w", err)
			}
		case bytes.HasPrefix(l, prefixError):
			w.close()
			return rr, fmt.Errorf("writer: %.300s", l)
		}
	}
	w.close()
	rr.write = time.Since(start)

	target := s0 + int64(c.Events)
	for range c.Repeat {
		if err := tsResumeOnce(ctx, c, token, s0, target, &rr); err != nil {
			return rr, err
		}
	}
	return rr, nil
}

// tsResumeOnce connects with since s0 and reads until seq target.
func tsResumeOnce(ctx context.Context, c resumeConfig, token string, s0, target int64, rr *roundResult) error {
	var sm resumeSample
	t0 := time.Now()
	b, _, err := tsDial(ctx, c.URL, token, s0, c.Batch)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	sm.greeted = time.Since(t0)
	defer b.close()
	last, received := s0, 0
	for last < target {
		l, err := b.next(ctx)
		if err != nil {
			rr.missed += target - last
			return fmt.Errorf("resume at seq %d of %d: %w", last, target, err)
		}
		if !bytes.HasPrefix(l, prefixEvent) {
			continue
		}
		// Decoded in full, as a client applying it would (and as the
		// Centrifugo side decodes its subscribe reply).
		var ev struct {
			Seq  int64           `json:"seq"`
			Task json.RawMessage `json:"task"`
		}
		if err := json.Unmarshal(l, &ev); err != nil {
			return fmt.Errorf("decode %.200s: %w", l, err)
		}
		seq := ev.Seq
		if received == 0 {
			sm.first = time.Since(t0)
		}
		received++
		rr.received++
		if seq != last+1 {
			rr.missed++ // a gap, a duplicate or a reorder
		}
		last = max(last, seq)
	}
	sm.current = time.Since(t0)
	rr.samples = append(rr.samples, sm)
	rr.bytes += b.bytes
	return nil
}

// ---------------------------------------------------------------- Centrifugo

// cfDialSubscribe connects and subscribes to channel (with recover: from
// offset and epoch) and returns the subscribe result.
func cfDialSubscribe(ctx context.Context, url, token, channel string, recover bool, offset uint64, epoch string) (*lineConn, *cfSubscribeResult, error) {
	lc, err := dialLine(ctx, url, nil)
	if err != nil {
		return nil, nil, err
	}
	sub := map[string]any{"channel": channel}
	if recover {
		sub["recover"], sub["offset"], sub["epoch"] = true, offset, epoch
	}
	subJSON, err := json.Marshal(map[string]any{"id": cfSubscribeID, "subscribe": sub})
	if err != nil {
		lc.close()
		return nil, nil, err
	}
	frame := append(cfConnect(token), '\n')
	frame = append(frame, subJSON...)
	if err := lc.write(ctx, frame); err != nil {
		lc.close()
		return nil, nil, err
	}
	for {
		l, err := lc.next(ctx)
		if err != nil {
			lc.close()
			return nil, nil, err
		}
		var r cfReplyFrame
		if err := json.Unmarshal(l, &r); err != nil {
			lc.close()
			return nil, nil, fmt.Errorf("decode %.200s: %w", l, err)
		}
		if r.Error != nil {
			lc.close()
			return nil, nil, fmt.Errorf("command %d: error %d %s", r.ID, r.Error.Code, r.Error.Message)
		}
		if r.Connect != nil {
			lc.pong = r.Connect.Pong
		}
		if r.ID == cfSubscribeID && r.Subscribe != nil {
			return lc, r.Subscribe, nil
		}
	}
}

func cfResumeRound(ctx context.Context, c resumeConfig, channel, token string) (roundResult, error) {
	var rr roundResult
	a, sub, err := cfDialSubscribe(ctx, c.URL, token, channel, false, 0, "")
	if err != nil {
		return rr, fmt.Errorf("first connect: %w", err)
	}
	a.close()
	// The epoch may be empty: Centrifugo's Postgres broker has none for a
	// channel never published to (its History finds no meta row), and then
	// recovery does not check it, as for any client that saw no epoch.
	if !sub.Recoverable {
		return rr, fmt.Errorf("channel %q is not recoverable: enable history and force_recovery for it", channel)
	}
	o0, epoch := sub.Offset, sub.Epoch

	start := time.Now()
	w, _, err := cfDialSubscribe(ctx, c.URL, token, channel, false, 0, "")
	if err != nil {
		return rr, fmt.Errorf("writer: %w", err)
	}
	g := &loadgen{runTag: "resume"}
	sent, replied := 0, 0
	for replied < c.Events {
		for sent < c.Events && sent-replied < resumeInFlight {
			if err := w.write(ctx, g.cfPublishFrame(int64(sent), channel)); err != nil {
				w.close()
				return rr, fmt.Errorf("writer: %w", err)
			}
			sent++
		}
		l, err := w.next(ctx)
		if err != nil {
			return rr, fmt.Errorf("writer: %w", err)
		}
		if !bytes.HasPrefix(l, cfIDStart) {
			continue // its own publications
		}
		if bytes.Contains(l, []byte(`"error":{`)) {
			w.close()
			return rr, fmt.Errorf("writer: %.300s", l)
		}
		replied++
	}
	w.close()
	rr.write = time.Since(start)

	target := o0 + uint64(c.Events)
	for range c.Repeat {
		if err := cfResumeOnce(ctx, c, token, channel, o0, epoch, target, &rr); err != nil {
			return rr, err
		}
	}
	return rr, nil
}

// cfResumeOnce subscribes with recovery from offset o0 and reads until
// offset target.
func cfResumeOnce(ctx context.Context, c resumeConfig, token, channel string, o0 uint64, epoch string, target uint64, rr *roundResult) error {
	var sm resumeSample
	t0 := time.Now()
	b, sub, err := cfDialSubscribe(ctx, c.URL, token, channel, true, o0, epoch)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	sm.greeted = time.Since(t0)
	defer b.close()
	last, received := o0, 0
	apply := func(p *cfPublication) {
		if received == 0 {
			sm.first = time.Since(t0)
		}
		received++
		rr.received++
		if p.Offset != last+1 {
			rr.missed++
		}
		last = max(last, p.Offset)
	}
	for i := range sub.Publications {
		apply(&sub.Publications[i])
	}
	if !sub.Recovered && last < target {
		rr.missed += int64(target - last)
		return fmt.Errorf("not recovered (offset %d..%d, %d publications in the reply): raise client.recovery_max_publication_limit", o0, sub.Offset, len(sub.Publications))
	}
	for last < target {
		l, err := b.next(ctx)
		if err != nil {
			rr.missed += int64(target - last)
			return fmt.Errorf("resume at offset %d of %d: %w", last, target, err)
		}
		var r cfReplyFrame
		if json.Unmarshal(l, &r) == nil && r.Push != nil && r.Push.Pub != nil {
			apply(r.Push.Pub)
		}
	}
	sm.current = time.Since(t0)
	rr.samples = append(rr.samples, sm)
	rr.bytes += b.bytes
	return nil
}
