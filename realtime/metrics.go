package realtime

import (
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the realtime package's Prometheus collectors. Each server
// registers its own set (two instances in one test process do not collide).
type Metrics struct {
	socketsOpen      prometheus.Gauge
	framesIn         *prometheus.CounterVec
	framesOut        *prometheus.CounterVec
	framesOutByType  map[string]prometheus.Counter // read-only after NewMetrics
	eventsFanned     prometheus.Counter
	deliveryLatency  prometheus.Histogram
	slowConsumers    prometheus.Counter
	lagging          prometheus.Counter
	listenReconnects prometheus.Counter
	redisReconnects  prometheus.Counter
	logReads         prometheus.Counter
	catchupQueries   prometheus.Counter
	catchupRequests  prometheus.Counter
	notifications    *prometheus.CounterVec
	snapshots        prometheus.Counter
	closes           *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered, for tests and benchmarks).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		socketsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_sockets_open", Help: "Authenticated WebSocket sessions open on this instance."}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_frames_in_total", Help: "Client frames received, by type (unknown types count as \"invalid\")."}, []string{"type"}),
		framesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_frames_out_total", Help: "Frames written to sockets, by type."}, []string{"type"}),
		eventsFanned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_events_fanned_out_total", Help: "Change events handed to local sessions (one per event per session)."}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tasksync_event_dispatch_latency_seconds",
			Help:    "From the change-log row being written (in the writer's transaction) to its dispatch to local sessions.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_slow_consumer_closes_total", Help: "Sessions closed as slow consumers: their send queue overflowed, a snapshot was not read in time, or writes timed out."}),
		lagging: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_lagging_sessions_total", Help: "Times a session's queue was full of events and it switched to reading the change log at its own pace."}),
		listenReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_listen_reconnects_total", Help: "Reconnections of the LISTEN connection."}),
		redisReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_redis_reconnects_total", Help: "Recoveries of the broker after failed calls or a lost subscription."}),
		logReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_change_log_reads_total", Help: "Batched change-log reads by the hub."}),
		catchupQueries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_catchup_queries_total", Help: "Catch-up queries (current seq of new sockets, change-log replays), each serving one or more grouped requests."}),
		catchupRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_catchup_requests_total", Help: "Catch-up reads asked for by sessions; over tasksync_catchup_queries_total, the average group."}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_change_notifications_total",
			Help: "Change-log notifications received, by form (inline: the event itself; pointer: seq and user) and what the hub did: dispatched (an inline event, without reading the log), read_log (a pointer, or a seq gap), stale (already dispatched), no_session (no session of the user here)."},
			[]string{"form", "result"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_snapshots_total", Help: "Full snapshots sent instead of a replay."}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_socket_closes_total", Help: "Sessions ended, by close code (docs/PROTOCOL.md)."}, []string{"code"}),
	}
	m.framesOutByType = map[string]prometheus.Counter{}
	for _, ty := range []string{TypeHello, TypePong, TypeReply, TypeError, TypeTaskCreated, TypeTaskUpdated,
		TypeTaskDeleted, TypeSnapshot, TypeSynced, TypePresenceInfo, "chat.started", "chat.delta",
		"chat.tool_call", "chat.tool_result", "chat.done", "chat.error", "other"} {
		m.framesOutByType[ty] = m.framesOut.WithLabelValues(ty)
	}
	if reg != nil {
		reg.MustRegister(m.socketsOpen, m.framesIn, m.framesOut, m.eventsFanned, m.deliveryLatency,
			m.slowConsumers, m.lagging, m.listenReconnects, m.redisReconnects, m.logReads, m.catchupQueries, m.catchupRequests, m.notifications, m.snapshots, m.closes)
	}
	return m
}

// closed counts a session that ended with code, once per session.
func (m *Metrics) closed(code websocket.StatusCode) {
	if code == 0 {
		code = websocket.StatusAbnormalClosure
	}
	if code == CloseSlowConsumer {
		m.slowConsumers.Inc()
	}
	m.closes.WithLabelValues(codeLabel(code)).Inc()
}

// countOut counts a written frame by its type, read from the frame's
// prefix: every server frame starts with {"type":"<type>". No parsing, no
// allocation on the write path.
func (m *Metrics) countOut(frame []byte) {
	const prefix = `{"type":"`
	c := m.framesOutByType["other"]
	if len(frame) > len(prefix) && string(frame[:len(prefix)]) == prefix {
		rest := frame[len(prefix):]
		for i, b := range rest {
			if b == '"' {
				if known, ok := m.framesOutByType[string(rest[:i])]; ok {
					c = known
				}
				break
			}
		}
	}
	c.Inc()
}
