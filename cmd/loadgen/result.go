package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// socketsResult is the JSON report of one `sockets` run. Rates are per
// second of the measured window; latency samples are those of mutations
// sent in the window (a mutation's reply and events may arrive during the
// drain that follows).
type socketsResult struct {
	Tool    string        `json:"tool"`
	Label   string        `json:"label"`
	Run     string        `json:"run"`
	Started time.Time     `json:"started"`
	Config  socketsConfig `json:"config"`
	WindowS float64       `json:"window_s"`

	Sockets struct {
		Active      int              `json:"active"`
		Idle        int              `json:"idle"`
		Chat        int              `json:"chat"`
		Opened      int              `json:"opened"`
		DialSeconds float64          `json:"dial_seconds"`
		DialErrors  map[string]int64 `json:"dial_errors,omitempty"`
	} `json:"sockets"`

	Mutations struct {
		Sent      int64            `json:"sent"`
		Acked     int64            `json:"acked"`
		PerSecond float64          `json:"acked_per_second"`
		Ack       latencySummary   `json:"ack_latency"`
		Errors    map[string]int64 `json:"error_frames,omitempty"`
		Timeouts  int64            `json:"timeouts"`
	} `json:"mutations"`

	// Fanout is write-to-other-socket latency: from sending a mutation to
	// its event arriving on another socket of the same user, by whether
	// that socket is on the writer's instance.
	Fanout struct {
		SameInstance  latencySummary `json:"same_instance"`
		CrossInstance latencySummary `json:"cross_instance"`
	} `json:"fanout"`

	Events struct {
		Delivered     int64   `json:"delivered"`
		PerSecond     float64 `json:"delivered_per_second"`
		FrameBytesAvg float64 `json:"frame_bytes_avg"`
		Presence      int64   `json:"presence_frames"`
		Other         int64   `json:"other_frames"`
	} `json:"events"`

	Chat *struct {
		Sent    int64          `json:"sent"`
		Done    int64          `json:"done"`
		Failed  int64          `json:"failed"`
		Skipped int64          `json:"skipped"`
		Reply   latencySummary `json:"reply_latency"`
		Turn    latencySummary `json:"turn_latency"`
	} `json:"chat,omitempty"`

	// Disconnects are sockets closed by the server (or dropped) before the
	// loadgen closed them, by close code (1006: no close frame).
	Disconnects map[string]int64 `json:"disconnects,omitempty"`
	Memory      []memoryReport   `json:"memory"`
	// CPU is the CPU time the processes of the run used in the window,
	// per delivered event (nil without --pid).
	CPU *cpuReport `json:"cpu,omitempty"`
	// ErrorsTotal adds dial errors, error frames, ack timeouts and
	// disconnects: a clean run has 0.
	ErrorsTotal int64 `json:"errors_total"`
}

func (r *socketsResult) finish(g *loadgen) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.Sockets.DialErrors = maps.Clone(g.dialErrors)
	r.Mutations.Sent, r.Mutations.Acked = g.sent.Load(), g.acked.Load()
	r.Mutations.Ack = g.ack.summary()
	r.Mutations.Errors = maps.Clone(g.errCodes)
	r.Mutations.Timeouts = g.timeouts.Load()
	r.Fanout.SameInstance, r.Fanout.CrossInstance = g.same.summary(), g.cross.summary()
	r.Events.Delivered = g.delivered.Load()
	if r.Events.Delivered > 0 {
		r.Events.FrameBytesAvg = round3(float64(g.deliveredBytes.Load()) / float64(r.Events.Delivered))
	}
	r.Events.Presence, r.Events.Other = g.presence.Load(), g.other.Load()
	if r.WindowS > 0 {
		r.Mutations.PerSecond = round3(float64(r.Mutations.Acked) / r.WindowS)
		r.Events.PerSecond = round3(float64(r.Events.Delivered) / r.WindowS)
	}
	if g.cfg.ChatRate > 0 {
		r.Chat = &struct {
			Sent    int64          `json:"sent"`
			Done    int64          `json:"done"`
			Failed  int64          `json:"failed"`
			Skipped int64          `json:"skipped"`
			Reply   latencySummary `json:"reply_latency"`
			Turn    latencySummary `json:"turn_latency"`
		}{g.chatSent.Load(), g.chatDone.Load(), g.chatFailed.Load(), g.chatSkipped.Load(), g.chatReply.summary(), g.chatTurn.summary()}
	}
	r.Disconnects = maps.Clone(g.closes)
	var total int64
	for _, m := range []map[string]int64{g.dialErrors, g.errCodes, g.closes} {
		for _, v := range m {
			total += v
		}
	}
	r.ErrorsTotal = total + r.Mutations.Timeouts
}

func fmtLat(s latencySummary) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%d)", s.P50ms, s.P99ms, s.MaxMS, s.N)
}

func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func (r *socketsResult) print(w io.Writer) {
	fmt.Fprintf(w, "== loadgen sockets %s (run %s)\n", r.Label, r.Run)
	fmt.Fprintf(w, "sockets      %d active, %d idle, %d chat over %d instance(s); %d opened in %.1fs; dial errors: %s\n",
		r.Sockets.Active, r.Sockets.Idle, r.Sockets.Chat, len(r.Config.URLs), r.Sockets.Opened, r.Sockets.DialSeconds, fmtCounts(r.Sockets.DialErrors))
	fmt.Fprintf(w, "window       %.1fs\n", r.WindowS)
	if r.Config.Writers > 0 {
		mode := fmt.Sprintf("closed loop, %d writers", r.Config.Writers)
		if r.Config.Rate > 0 {
			mode = fmt.Sprintf("%.0f/s open loop over %d writers", r.Config.Rate, r.Config.Writers)
		}
		if r.Config.CfPublish == cfPublishAPI {
			mode += ", published through the server API"
		}
		fmt.Fprintf(w, "mutations    %.1f acked/s (%s); sent %d, acked %d, timeouts %d\n", r.Mutations.PerSecond, mode, r.Mutations.Sent, r.Mutations.Acked, r.Mutations.Timeouts)
		fmt.Fprintf(w, "ack          %s\n", fmtLat(r.Mutations.Ack))
		fmt.Fprintf(w, "to other socket, same instance   %s\n", fmtLat(r.Fanout.SameInstance))
		fmt.Fprintf(w, "to other socket, cross instance  %s\n", fmtLat(r.Fanout.CrossInstance))
	}
	fmt.Fprintf(w, "events       %.1f delivered/s (%d, avg %.0f B); presence frames %d, other %d\n",
		r.Events.PerSecond, r.Events.Delivered, r.Events.FrameBytesAvg, r.Events.Presence, r.Events.Other)
	if c := r.Chat; c != nil {
		fmt.Fprintf(w, "chat         sent %d, done %d, failed %d, skipped %d; reply %s; turn %s\n", c.Sent, c.Done, c.Failed, c.Skipped, fmtLat(c.Reply), fmtLat(c.Turn))
	}
	fmt.Fprintf(w, "error frames %s\n", fmtCounts(r.Mutations.Errors))
	fmt.Fprintf(w, "disconnects  %s\n", fmtCounts(r.Disconnects))
	if c := r.CPU; c != nil {
		fmt.Fprintf(w, "cpu          %s\n", c)
	}
	for _, m := range r.Memory {
		if m.Err != "" {
			fmt.Fprintf(w, "memory       %s: %s\n", m.URL, m.Err)
			continue
		}
		extra := ""
		if m.HeapPerSocket != 0 {
			extra = fmt.Sprintf(", heap in use %.0f B/socket, %.2f goroutines/socket", m.HeapPerSocket, m.GoroutinesPerSock)
		}
		fmt.Fprintf(w, "memory       %s: RSS %.1f -> %.1f MiB (end %.1f) for %d sockets: %.0f B/socket%s\n",
			m.URL, mib(m.RSSBefore), mib(m.RSSAfter), mib(m.RSSEnd), m.Sockets, m.RSSPerSocket, extra)
	}
	fmt.Fprintf(w, "errors total %d\n", r.ErrorsTotal)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
