package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"tasksync/auth"
	"tasksync/internal/reqlog"
)

// socketsConfig are the flags of `loadgen sockets`.
type socketsConfig struct {
	Label       string `json:"label"`
	Proto       string `json:"proto"`
	CfPublish   string `json:"cf_publish,omitempty"`
	cfAPIKey    string
	URLs        []string `json:"urls"`
	secret      string
	Users       int     `json:"users"`
	Sockets     int     `json:"sockets"`
	Writers     int     `json:"writers"`
	Rate        float64 `json:"rate"`
	Idle        int     `json:"idle"`
	IdlePerUser int     `json:"idle_per_user"`
	ChatRate    float64 `json:"chat_rate"`
	ChatUsers   int     `json:"chat_users"`
	ChatMessage string  `json:"chat_message"`
	DescBytes   int     `json:"desc_bytes"`
	MutationIDs bool    `json:"mutation_ids"`
	Batch       bool    `json:"batch,omitempty"`

	Duration     time.Duration `json:"-"`
	Warmup       time.Duration `json:"-"`
	Drain        time.Duration `json:"-"`
	Settle       time.Duration `json:"-"`
	DialTimeout  time.Duration `json:"-"`
	MaxMutations int           `json:"max_mutations"`
	PIDs         []int         `json:"pids,omitempty"`
	SourceIPs    int           `json:"source_ips"`
	DialConc     int           `json:"dial_concurrency"`
	ReadyFile    string        `json:"-"`
	StopFile     string        `json:"-"`
	JSONPath     string        `json:"-"`

	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
}

func parseSocketsFlags(args []string) (socketsConfig, error) {
	var c socketsConfig
	fs := flag.NewFlagSet("sockets", flag.ContinueOnError)
	urls := fs.String("url", "", "comma-separated socket URLs of the instances (ws://127.0.0.1:8080/ws,...): loopback only")
	pids := fs.String("pid", "", "comma-separated server pids, in --url order, for VmRSS (else process_resident_memory_bytes from /metrics)")
	fs.StringVar(&c.Label, "label", "", "scenario name recorded in the JSON")
	fs.StringVar(&c.Proto, "proto", protoTasksync, "the server's protocol: tasksync, or centrifugo (its JSON protocol: each socket connects with a token for its user, subscribes to its user's channel, and writers publish task events into it; --url ws://HOST:PORT/connection/websocket)")
	fs.StringVar(&c.CfPublish, "cf-publish", cfPublishSocket, "with --proto centrifugo, how writers publish: socket (the publish command on the writer's socket) or api (POST /api/publish on the writer's instance with --cf-api-key, over keep-alive HTTP; the writer's socket stays subscribed)")
	fs.StringVar(&c.cfAPIKey, "cf-api-key", "", "Centrifugo's http_api.key, for --cf-publish api")
	fs.StringVar(&c.secret, "secret", os.Getenv("AUTH_JWT_SECRET"), "HS256 secret the servers verify (default $AUTH_JWT_SECRET)")
	fs.IntVar(&c.Users, "users", 1, "active users")
	fs.IntVar(&c.Sockets, "sockets", 2, "active sockets, spread over the users and then over the instances (socket i: user i%users, instance (i/users)%instances)")
	fs.IntVar(&c.Writers, "writers", 0, "sockets that send mutations (the first sockets: one per user first); with --rate 0 each keeps one mutation in flight (as fast as acks allow); default: one per user")
	fs.Float64Var(&c.Rate, "rate", 0, "mutations per second in all, sent round robin by the writers without waiting for acks (0: closed loop)")
	fs.IntVar(&c.Idle, "idle", 0, "idle sockets of other users, spread over the instances")
	fs.IntVar(&c.IdlePerUser, "idle-per-user", 1, "idle sockets per idle user")
	fs.Float64Var(&c.ChatRate, "chat-rate", 0, "chat turns per second (chat.send), 0: none")
	fs.IntVar(&c.ChatUsers, "chat-users", 2, "users (one socket each) that run chat turns, one turn at a time each")
	fs.StringVar(&c.ChatMessage, "chat-message", "show me all my tasks", "the chat.send message")
	fs.IntVar(&c.DescBytes, "desc-bytes", 0, "description length of created tasks (sets the event frame size)")
	fs.BoolVar(&c.Batch, "batch", false, "tasksync: connect with ?batch=1 (several frames a message, one a line), as the SDK does")
	fs.BoolVar(&c.MutationIDs, "mutation-ids", false, "send a mutation_id with every mutation (adds the idempotency record to each transaction)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "traffic before the window, not measured")
	fs.DurationVar(&c.Drain, "drain", 3*time.Second, "after the window: longest wait for outstanding acks")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "after opening the sockets: wait before reading server memory")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", 30*time.Second, "per socket: upgrade and hello")
	fs.IntVar(&c.MaxMutations, "max-mutations", 2_000_000, "hard bound on mutations sent in one run")
	fs.IntVar(&c.SourceIPs, "source-ips", 0, "spread sockets over source addresses 127.0.0.1..127.0.0.N (0: 1 per 10,000 sockets)")
	fs.IntVar(&c.DialConc, "dial-concurrency", 32, "sockets opened at once")
	fs.StringVar(&c.ReadyFile, "ready-file", "", "write this file once every socket is open (for scripts)")
	fs.StringVar(&c.StopFile, "stop-file", "", "end the window early once this file exists (for scripts holding idle sockets)")
	fs.StringVar(&c.JSONPath, "json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			if err := checkLoopbackURL(u); err != nil {
				return c, err
			}
			c.URLs = append(c.URLs, u)
		}
	}
	if len(c.URLs) == 0 {
		return c, errors.New("--url is required")
	}
	for _, p := range strings.Split(*pids, ",") {
		if p = strings.TrimSpace(p); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return c, fmt.Errorf("--pid: %q is not a pid", p)
			}
			c.PIDs = append(c.PIDs, n)
		}
	}
	if len(c.PIDs) > 0 && len(c.PIDs) != len(c.URLs) {
		return c, errors.New("--pid needs one pid per --url")
	}
	switch {
	case c.Proto != protoTasksync && c.Proto != protoCentrifugo:
		return c, fmt.Errorf("--proto must be %s or %s", protoTasksync, protoCentrifugo)
	case c.CfPublish != cfPublishSocket && c.CfPublish != cfPublishAPI:
		return c, fmt.Errorf("--cf-publish must be %s or %s", cfPublishSocket, cfPublishAPI)
	case c.CfPublish == cfPublishAPI && (c.Proto != protoCentrifugo || c.cfAPIKey == ""):
		return c, errors.New("--cf-publish api needs --proto centrifugo and --cf-api-key")
	case c.Proto == protoCentrifugo && c.ChatRate > 0:
		return c, errors.New("--chat-rate needs --proto tasksync (Centrifugo has no assistant)")
	case len(c.secret) < auth.MinSecretBytes:
		return c, fmt.Errorf("--secret (or AUTH_JWT_SECRET) must be at least %d bytes", auth.MinSecretBytes)
	case c.Users < 1 || c.Sockets < 0 || c.Idle < 0 || c.IdlePerUser < 1 || c.ChatUsers < 1:
		return c, errors.New("--users, --idle-per-user and --chat-users must be at least 1; --sockets and --idle at least 0")
	case c.Rate < 0 || c.ChatRate < 0 || math.IsInf(c.Rate, 0):
		return c, errors.New("--rate and --chat-rate must not be negative")
	case c.Duration <= 0 || c.Duration > time.Hour:
		return c, errors.New("--duration must be in (0, 1h]")
	case c.MaxMutations < 1 || c.MaxMutations > 50_000_000:
		return c, errors.New("--max-mutations must be in [1, 50,000,000]")
	case c.DescBytes < 0 || c.DescBytes > 1000:
		return c, errors.New("--desc-bytes must be in [0, 1000] (the task description limit)")
	}
	if c.Writers == 0 && c.Rate > 0 {
		c.Writers = min(c.Users, c.Sockets)
	}
	if c.Writers > c.Sockets {
		return c, fmt.Errorf("--writers %d is more than --sockets %d", c.Writers, c.Sockets)
	}
	if c.Rate > 0 && c.Writers == 0 {
		return c, errors.New("--rate needs at least one active socket")
	}
	total := c.Sockets + c.Idle
	if c.SourceIPs == 0 {
		c.SourceIPs = 1 + total/10000
	}
	c.DurationS, c.WarmupS = c.Duration.Seconds(), c.Warmup.Seconds()
	return c, nil
}

// loadgen is one `sockets` run.
type loadgen struct {
	cfg    socketsConfig
	t0     time.Time
	runTag string
	// titleValue starts the title of every task this run creates, before
	// the mutation number: `"lg-<run>-` (see titleNumber).
	titleValue []byte
	pad        string

	sendAt []atomic.Int64 // by mutation number: send time (ns since t0); 0: unsent
	sendBy []atomic.Int32 // by mutation number: index+1 of the writing client
	next   atomic.Int64

	clients []*client
	// api publishes for the writers with --cf-publish api (nil: on sockets).
	api *cfAPIPublisher
	// The measured window, in ns since t0; until it starts both are max.
	winFrom, winTo atomic.Int64
	stop           atomic.Bool // writers stop sending
	// sendMu is held shared by a writer from its check of stop to the end
	// of its write, and taken once exclusively when the window ends: after
	// that no write is under way, so ending the traffic context cannot
	// cancel one (the library closes a socket whose write is cancelled,
	// which showed as a 1006 of our own making at the end of open-loop runs).
	sendMu  sync.RWMutex
	closing atomic.Bool // we are closing the sockets ourselves

	ack, same, cross, chatReply, chatTurn hist

	sent, sentAll, acked, ackedAll atomic.Int64
	delivered, deliveredBytes      atomic.Int64
	presence, other                atomic.Int64
	timeouts                       atomic.Int64
	chatSent, chatDone, chatFailed atomic.Int64
	chatSkipped                    atomic.Int64

	mu         sync.Mutex
	errCodes   map[string]int64
	closes     map[string]int64
	dialErrors map[string]int64
}

type role int

const (
	roleActive role = iota
	roleIdle
	roleChat
)

// client is one socket.
type client struct {
	g        *loadgen
	idx      int
	user     string
	inst     int // index into cfg.URLs
	role     role
	conn     *websocket.Conn
	hello    chan struct{}
	helloed  atomic.Bool
	done     chan struct{}
	instance string

	inflight atomic.Int64 // closed loop: the mutation awaiting its reply
	ackCh    chan struct{}

	chatBusy  atomic.Bool
	chatStart atomic.Int64
	convID    atomic.Int64
}

func (g *loadgen) now() int64 { return int64(time.Since(g.t0)) }

func (g *loadgen) inWindow(t int64) bool { return t >= g.winFrom.Load() && t < g.winTo.Load() }

func (g *loadgen) count(m *map[string]int64, key string) {
	g.mu.Lock()
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[key]++
	g.mu.Unlock()
}

func runSockets(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseSocketsFlags(args)
	if err != nil {
		return err
	}
	g := &loadgen{cfg: cfg, t0: time.Now(), runTag: strings.ToLower(reqlog.NewID()[:10])}
	g.titleValue = []byte(`"lg-` + g.runTag + `-`)
	g.pad = strings.Repeat("x", cfg.DescBytes)
	g.winFrom.Store(math.MaxInt64)
	g.winTo.Store(math.MaxInt64)
	if cfg.Writers > 0 {
		g.sendAt = make([]atomic.Int64, cfg.MaxMutations)
		g.sendBy = make([]atomic.Int32, cfg.MaxMutations)
	}
	if cfg.Proto == protoCentrifugo && cfg.CfPublish == cfPublishAPI {
		if g.api, err = newCfAPIPublisher(g); err != nil {
			return err
		}
	}
	res, err := g.run(ctx)
	if res != nil {
		res.print(stdout)
		if jerr := writeJSON(cfg.JSONPath, res); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// layout creates the clients: idle sockets first (so that they are open
// before the measured traffic starts), then active, then chat sockets.
func (g *loadgen) layout() {
	cfg := g.cfg
	n := len(cfg.URLs)
	for i := 0; i < cfg.Idle; i++ {
		g.add(&client{user: fmt.Sprintf("lg-%s-i%d", g.runTag, i/cfg.IdlePerUser), inst: i % n, role: roleIdle})
	}
	for i := 0; i < cfg.Sockets; i++ {
		g.add(&client{user: fmt.Sprintf("lg-%s-u%d", g.runTag, i%cfg.Users), inst: (i / cfg.Users) % n, role: roleActive})
	}
	if cfg.ChatRate > 0 {
		for i := 0; i < cfg.ChatUsers; i++ {
			g.add(&client{user: fmt.Sprintf("lg-%s-c%d", g.runTag, i), inst: i % n, role: roleChat})
		}
	}
}

func (g *loadgen) add(c *client) {
	c.g, c.idx = g, len(g.clients)
	c.hello, c.done, c.ackCh = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	c.inflight.Store(-1)
	g.clients = append(g.clients, c)
}

func (g *loadgen) byRole(r role) []*client {
	var out []*client
	for _, c := range g.clients {
		if c.role == r {
			out = append(out, c)
		}
	}
	return out
}

func (g *loadgen) run(ctx context.Context) (*socketsResult, error) {
	cfg := g.cfg
	g.layout()
	res := &socketsResult{Tool: "loadgen sockets", Label: cfg.Label, Run: g.runTag, Started: time.Now().UTC(), Config: cfg}

	// Memory before any socket of ours.
	before := g.sampleAll(ctx)

	// Open every socket.
	dialStart := time.Now()
	opened, err := g.dialAll(ctx)
	res.Sockets.DialSeconds = round3(time.Since(dialStart).Seconds())
	res.Sockets.Opened = opened
	res.Sockets.Active, res.Sockets.Idle, res.Sockets.Chat = cfg.Sockets, cfg.Idle, len(g.byRole(roleChat))
	defer g.closeAll()
	// A socket that failed to open is counted (dial_errors) and the run goes
	// on with the others; the error is returned at the end.
	dialErr := err
	if err != nil && (opened == 0 || ctx.Err() != nil) {
		res.finish(g)
		return res, err
	}
	fmt.Fprintf(os.Stderr, "loadgen %s: %d of %d sockets open in %.1fs\n", cfg.Label, opened, len(g.clients), res.Sockets.DialSeconds)
	if !sleepCtx(ctx, cfg.Settle) {
		return res, ctx.Err()
	}
	after := g.sampleAll(ctx)
	res.Memory = g.memoryReport(before, after)
	if cfg.ReadyFile != "" {
		if err := os.WriteFile(cfg.ReadyFile, []byte(strconv.Itoa(opened)+"\n"), 0o644); err != nil {
			return res, err
		}
	}

	// Traffic: warm-up, then the window, then a drain.
	var writers []*client
	for _, w := range g.byRole(roleActive)[:cfg.Writers] {
		if w.helloed.Load() {
			writers = append(writers, w)
		}
	}
	if cfg.Writers > 0 && len(writers) == 0 {
		res.finish(g)
		return res, errors.New("no writer socket could be opened")
	}
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var wg sync.WaitGroup
	switch {
	case cfg.Rate > 0:
		wg.Add(1)
		go func() { defer wg.Done(); g.openLoop(tctx, writers) }()
	default:
		for _, w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); g.closedLoop(tctx, w) }()
		}
	}
	if cfg.ChatRate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); g.chatLoop(tctx) }()
	}
	ok := sleepCtx(ctx, cfg.Warmup)
	var cpuFrom cpuSample
	if ok {
		// The window opens first: traffic is flowing (with no warm-up,
		// from this moment), and the scan of /proc takes milliseconds.
		g.winFrom.Store(g.now())
		cpuFrom = g.sampleCPU()
		ok = g.window(ctx)
	}
	winEnd := g.now()
	cpuTo := g.sampleCPU()
	g.winTo.Store(winEnd)
	g.stop.Store(true)
	g.sendMu.Lock() // wait for the writes under way (see sendMu)
	g.sendMu.Unlock()
	// Let outstanding mutations and chat turns finish, bounded by Drain.
	deadline := time.Now().Add(cfg.Drain)
	for time.Now().Before(deadline) && (g.ackedAll.Load() < g.sentAll.Load() || g.chatsBusy()) {
		time.Sleep(5 * time.Millisecond)
	}
	stopTraffic()
	wg.Wait()
	if g.api != nil {
		g.api.wg.Wait()
	}
	// Events of the last mutations may trail their acks a little.
	sleepCtx(ctx, min(cfg.Drain, 300*time.Millisecond))
	res.WindowS = round3(float64(winEnd-g.winFrom.Load()) / 1e9)
	if !ok {
		res.WindowS = 0
	}
	end := g.sampleAll(ctx)
	for i := range res.Memory {
		res.Memory[i].RSSEnd = end[i].RSS
	}
	res.finish(g)
	if ok {
		res.CPU = cpuReportOf(cpuFrom, cpuTo, res.Events.Delivered)
	}
	if !ok {
		return res, ctx.Err()
	}
	return res, dialErr
}

// window waits for the measured window to pass, or for the stop file.
func (g *loadgen) window(ctx context.Context) bool {
	if g.cfg.StopFile == "" {
		return sleepCtx(ctx, g.cfg.Duration)
	}
	end := time.Now().Add(g.cfg.Duration)
	for time.Now().Before(end) {
		if _, err := os.Stat(g.cfg.StopFile); err == nil {
			return true
		}
		if !sleepCtx(ctx, min(100*time.Millisecond, time.Until(end))) {
			return false
		}
	}
	return true
}

func (g *loadgen) chatsBusy() bool {
	for _, c := range g.byRole(roleChat) {
		if c.chatBusy.Load() {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ---------------------------------------------------------------- dialing

func (g *loadgen) httpClients() []*http.Client {
	n := max(1, g.cfg.SourceIPs)
	out := make([]*http.Client, n)
	for i := range out {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if n > 1 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
		}
		out[i] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1}}
	}
	return out
}

func (g *loadgen) dialAll(ctx context.Context) (int, error) {
	if g.cfg.SourceIPs > 1 {
		for _, u := range g.cfg.URLs {
			pu, _ := url.Parse(u)
			if ip := net.ParseIP(pu.Hostname()); ip == nil || ip.To4() == nil {
				return 0, fmt.Errorf("--source-ips %d needs IPv4 loopback URLs such as ws://127.0.0.1:8080/ws, got %s", g.cfg.SourceIPs, u)
			}
		}
	}
	clients := g.httpClients()
	tokens := map[string]string{}
	ttl := g.cfg.Warmup + g.cfg.Duration + g.cfg.Drain + time.Hour
	for _, c := range g.clients {
		if _, ok := tokens[c.user]; !ok {
			t, err := auth.IssueHS256([]byte(g.cfg.secret), c.user, ttl, "", "")
			if err != nil {
				return 0, err
			}
			tokens[c.user] = t
		}
	}
	var opened atomic.Int64
	var firstErr error
	var errOnce sync.Once
	sem := make(chan struct{}, max(1, g.cfg.DialConc))
	var wg sync.WaitGroup
	for i, c := range g.clients {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := g.dial(ctx, c, clients[i%len(clients)], tokens[c.user]); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("socket %d (%s): %w", c.idx, c.user, err) })
				return
			}
			opened.Add(1)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return int(opened.Load()), ctx.Err()
	}
	return int(opened.Load()), firstErr
}

func (g *loadgen) dial(ctx context.Context, c *client, hc *http.Client, token string) error {
	dctx, cancel := context.WithTimeout(ctx, g.cfg.DialTimeout)
	defer cancel()
	u := g.cfg.URLs[c.inst]
	opts := &websocket.DialOptions{HTTPClient: hc}
	// Centrifugo takes the token in its connect command; its socket counts
	// as greeted once the reply to its subscribe arrives (cfHandshake).
	if g.cfg.Proto != protoCentrifugo {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "device=loadgen"
		if g.cfg.Batch {
			u += "&batch=1"
		}
	}
	conn, res, err := websocket.Dial(dctx, u, opts)
	if err != nil {
		key := "dial"
		if res != nil {
			key = "http_" + strconv.Itoa(res.StatusCode)
		}
		g.count(&g.dialErrors, key)
		return err
	}
	conn.SetReadLimit(64 << 20)
	c.conn = conn
	go c.readLoop(ctx)
	if g.cfg.Proto == protoCentrifugo {
		if err := conn.Write(dctx, websocket.MessageText, cfHandshake(token, c.user)); err != nil {
			g.count(&g.dialErrors, "connect_write")
			return err
		}
	}
	select {
	case <-c.hello:
		return nil
	case <-c.done:
		g.count(&g.dialErrors, "closed_before_hello")
		return errors.New("closed before hello")
	case <-dctx.Done():
		g.count(&g.dialErrors, "no_hello")
		return errors.New("no hello frame in time")
	}
}

// closeAll closes our sockets with 1000 (normal), many at a time.
func (g *loadgen) closeAll() {
	g.closing.Store(true)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, c := range g.clients {
		if c.conn == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_ = c.conn.Close(websocket.StatusNormalClosure, "loadgen done")
		}()
	}
	wg.Wait()
}

// ---------------------------------------------------------------- traffic

func (g *loadgen) mutationFrame(n int64) []byte {
	b := make([]byte, 0, 128+len(g.pad))
	b = append(b, `{"type":"task.create","id":`...)
	b = strconv.AppendInt(b, n, 10)
	if g.cfg.MutationIDs {
		b = append(b, `,"mutation_id":"lg-`...)
		b = append(b, g.runTag...)
		b = append(b, '-')
		b = strconv.AppendInt(b, n, 10)
		b = append(b, '"')
	}
	b = append(b, `,"task":{"title":"lg-`...)
	b = append(b, g.runTag...)
	b = append(b, '-')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","description":"`...)
	b = append(b, g.pad...)
	b = append(b, `"}}`...)
	return b
}

// send records and sends mutation n on c.
func (g *loadgen) send(ctx context.Context, c *client, n int64) error {
	if g.api != nil {
		return g.api.send(ctx, c, n)
	}
	var frame []byte
	if g.cfg.Proto == protoCentrifugo {
		frame = g.cfPublishFrame(n, c.user)
	} else {
		frame = g.mutationFrame(n)
	}
	t := g.stamp(c, n)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.conn.Write(wctx, websocket.MessageText, frame); err != nil {
		return err
	}
	g.countSent(t)
	return nil
}

// stamp records that mutation n is sent now by c, and returns the time.
func (g *loadgen) stamp(c *client, n int64) int64 {
	t := g.now()
	g.sendBy[n].Store(int32(c.idx + 1))
	g.sendAt[n].Store(t)
	return t
}

// countSent counts a mutation sent at t (stamp), in the window or not.
func (g *loadgen) countSent(t int64) {
	g.sentAll.Add(1)
	if g.inWindow(t) {
		g.sent.Add(1)
	}
}

func (g *loadgen) nextMutation() (int64, bool) {
	n := g.next.Add(1) - 1
	return n, n < int64(len(g.sendAt))
}

// closedLoop keeps one mutation in flight on c: the next is sent when the
// reply (or error) to the previous one arrives.
func (g *loadgen) closedLoop(ctx context.Context, c *client) {
	for {
		if sent, err := g.sendNext(ctx, c); !sent || err != nil {
			return
		}
		t := time.NewTimer(10 * time.Second)
		select {
		case <-c.ackCh:
		case <-t.C:
			g.timeouts.Add(1)
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// openLoop sends at cfg.Rate, round robin over the writers, without
// waiting for replies (a late send is made at once: the mean rate holds).
func (g *loadgen) openLoop(ctx context.Context, writers []*client) {
	interval := float64(time.Second) / g.cfg.Rate
	start := time.Now()
	for i := 0; !g.stop.Load(); i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(at); d > 0 && !sleepCtx(ctx, d) {
			return
		}
		sent, err := g.sendNext(ctx, writers[i%len(writers)])
		if !sent || (err != nil && ctx.Err() != nil) {
			return
		}
	}
}

// sendNext sends the next mutation on c, unless the window has ended or
// the run's bound on mutations is reached (sent is false then).
func (g *loadgen) sendNext(ctx context.Context, c *client) (sent bool, err error) {
	g.sendMu.RLock()
	defer g.sendMu.RUnlock()
	if g.stop.Load() {
		return false, nil
	}
	n, ok := g.nextMutation()
	if !ok {
		return false, nil
	}
	c.inflight.Store(n)
	return true, g.send(ctx, c, n)
}

// chatLoop starts chat turns at cfg.ChatRate on chat sockets that have no
// turn running; a tick with every chat socket busy is counted as skipped.
func (g *loadgen) chatLoop(ctx context.Context) {
	chats := g.byRole(roleChat)
	interval := float64(time.Second) / g.cfg.ChatRate
	start := time.Now()
	for i := 0; !g.stop.Load(); i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(at); d > 0 && !sleepCtx(ctx, d) {
			return
		}
		var c *client
		for k := range chats {
			cand := chats[(i+k)%len(chats)]
			if cand.chatBusy.CompareAndSwap(false, true) {
				c = cand
				break
			}
		}
		if c == nil {
			g.chatSkipped.Add(1)
			continue
		}
		frame := []byte(`{"type":"chat.send","id":"c` + strconv.Itoa(i) + `"`)
		if conv := c.convID.Load(); conv > 0 {
			frame = append(frame, `,"conversation_id":`...)
			frame = strconv.AppendInt(frame, conv, 10)
		}
		frame = append(frame, `,"message":`...)
		frame = strconv.AppendQuote(frame, g.cfg.ChatMessage)
		frame = append(frame, '}')
		c.chatStart.Store(g.now())
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.conn.Write(wctx, websocket.MessageText, frame)
		cancel()
		if err != nil {
			c.chatBusy.Store(false)
			continue
		}
		g.chatSent.Add(1)
	}
}

// ---------------------------------------------------------------- reading

func (c *client) readLoop(ctx context.Context) {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		_, r, err := c.conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if !c.g.closing.Load() {
				code := websocket.CloseStatus(err)
				key := strconv.Itoa(int(code))
				if code == -1 {
					key = "1006"
				}
				c.g.count(&c.g.closes, key)
			}
			return
		}
		if c.g.cfg.Proto == protoCentrifugo {
			c.handleCentrifugo(buf.Bytes())
			continue
		}
		// One frame a line (a batching socket's message may hold several).
		for m := buf.Bytes(); len(m) > 0; {
			f := m
			if i := bytes.IndexByte(m, '\n'); i >= 0 {
				f, m = m[:i], m[i+1:]
			} else {
				m = nil
			}
			if len(f) > 0 {
				c.handle(f)
			}
		}
	}
}

var (
	prefixEvent    = []byte(`{"type":"task.`)
	prefixReply    = []byte(`{"type":"reply","id":`)
	prefixError    = []byte(`{"type":"error"`)
	prefixHello    = []byte(`{"type":"hello"`)
	prefixPresence = []byte(`{"type":"presence"`)
	prefixChatDone = []byte(`{"type":"chat.done"`)
	prefixChatErr  = []byte(`{"type":"chat.error"`)
)

// handle classifies one server frame by its prefix (every server frame
// starts with {"type":"<type>"); only the few fields measured are looked
// up, so that the load generator stays cheap next to the server. The bare
// baseline server answers with frames of the same shapes.
func (c *client) handle(f []byte) {
	g := c.g
	now := g.now()
	switch {
	case bytes.HasPrefix(f, prefixEvent):
		c.recordEvent(f)
	case bytes.HasPrefix(f, prefixReply):
		rest := f[len(prefixReply):]
		if len(rest) > 0 && rest[0] == '"' { // a chat request id ("c123")
			if conv, ok := intField(f, `"conversation_id":`); ok {
				c.convID.Store(conv)
			}
			if start := c.chatStart.Load(); g.inWindow(start) {
				g.chatReply.record(time.Duration(now - start))
			}
			return
		}
		if n, ok := leadingInt(rest); ok {
			c.acked(n, now)
		}
	case bytes.HasPrefix(f, prefixError):
		code := "unknown"
		if s := stringField(f, `"code":"`); s != "" {
			code = s
		}
		g.count(&g.errCodes, code)
		if bytes.Contains(f, []byte(`"re":"chat.`)) {
			g.chatFailed.Add(1)
			c.chatBusy.Store(false)
			return
		}
		if n, ok := intField(f, `"id":`); ok {
			c.acked(n, now)
		}
	case bytes.HasPrefix(f, prefixHello):
		c.instance = stringField(f, `"instance":"`)
		if c.helloed.CompareAndSwap(false, true) {
			close(c.hello)
		}
	case bytes.HasPrefix(f, prefixPresence):
		g.presence.Add(1)
	case bytes.HasPrefix(f, prefixChatDone), bytes.HasPrefix(f, prefixChatErr):
		if bytes.HasPrefix(f, prefixChatDone) {
			g.chatDone.Add(1)
		} else {
			g.chatFailed.Add(1)
		}
		if start := c.chatStart.Load(); c.chatBusy.Load() && g.inWindow(start) {
			g.chatTurn.record(time.Duration(now - start))
		}
		c.chatBusy.Store(false)
	default:
		g.other.Add(1)
	}
}

// acked records the reply (or error) to mutation n.
func (c *client) acked(n, now int64) {
	g := c.g
	if g.sendAt == nil || n < 0 || n >= int64(len(g.sendAt)) {
		return
	}
	g.ackedAll.Add(1)
	if at := g.sendAt[n].Load(); g.inWindow(at) {
		g.ack.record(time.Duration(now - at))
	}
	if g.inWindow(now) {
		g.acked.Add(1)
	}
	if c.inflight.Load() == n {
		select {
		case c.ackCh <- struct{}{}:
		default:
		}
	}
}

func leadingInt(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 18; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}

func intField(f []byte, key string) (int64, bool) {
	i := bytes.Index(f, []byte(key))
	if i < 0 {
		return 0, false
	}
	return leadingInt(f[i+len(key):])
}

// stringField returns the value of a string field given its key with the
// opening quote (`"code":"`); values measured here carry no escapes.
func stringField(f []byte, key string) string {
	i := bytes.Index(f, []byte(key))
	if i < 0 {
		return ""
	}
	rest := f[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// ---------------------------------------------------------------- memory

type memoryReport struct {
	URL               string  `json:"url"`
	PID               int     `json:"pid,omitempty"`
	Sockets           int     `json:"sockets"`
	RSSBefore         int64   `json:"rss_before"`
	RSSAfter          int64   `json:"rss_after"`
	RSSEnd            int64   `json:"rss_end"`
	RSSPerSocket      float64 `json:"rss_per_socket"`
	HeapPerSocket     float64 `json:"heap_inuse_per_socket,omitempty"`
	GoroutinesPerSock float64 `json:"goroutines_per_socket,omitempty"`
	Err               string  `json:"error,omitempty"`
}

func metricsURL(wsURL string) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	u.Scheme = strings.Replace(strings.Replace(u.Scheme, "wss", "https", 1), "ws", "http", 1)
	u.Path, u.RawQuery = "/metrics", ""
	return u.String()
}

func (g *loadgen) sampleAll(ctx context.Context) []memSample {
	out := make([]memSample, len(g.cfg.URLs))
	for i, u := range g.cfg.URLs {
		pid := 0
		if len(g.cfg.PIDs) > 0 {
			pid = g.cfg.PIDs[i]
		}
		s, err := sampleMemory(ctx, pid, metricsURL(u))
		if err != nil {
			s.RSS = -1
		}
		out[i] = s
	}
	return out
}

func (g *loadgen) memoryReport(before, after []memSample) []memoryReport {
	perInst := make([]int, len(g.cfg.URLs))
	for _, c := range g.clients {
		if c.helloed.Load() {
			perInst[c.inst]++
		}
	}
	out := make([]memoryReport, len(g.cfg.URLs))
	for i, u := range g.cfg.URLs {
		r := memoryReport{URL: u, Sockets: perInst[i], RSSBefore: before[i].RSS, RSSAfter: after[i].RSS}
		if len(g.cfg.PIDs) > 0 {
			r.PID = g.cfg.PIDs[i]
		}
		if before[i].RSS < 0 || after[i].RSS < 0 {
			r.Err = "memory not readable: give --pid, or a server with /metrics"
		} else if n := float64(perInst[i]); n > 0 {
			r.RSSPerSocket = math.Round(float64(after[i].RSS-before[i].RSS) / n)
			if after[i].HeapInuse > 0 {
				r.HeapPerSocket = math.Round(float64(after[i].HeapInuse-before[i].HeapInuse) / n)
				r.GoroutinesPerSock = round3(float64(after[i].Goroutines-before[i].Goroutines) / n)
			}
		}
		out[i] = r
	}
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
