package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// `loadgen sockets --proto centrifugo --cf-publish api`: the writers
// publish through Centrifugo's server API instead of their sockets, the
// way a backend publishes after its own write (Centrifugo's recommended
// path): POST /api/publish on the writer's instance with the X-API-Key
// header and {"channel":C,"data":D}, D the same task data a socket
// publish carries. The writer's socket stays open and subscribed, so the
// run has the same sockets; the clock is the same (request sent ->
// publication on another socket), and the HTTP reply is the ack.

const (
	cfPublishSocket = "socket"
	cfPublishAPI    = "api"

	// cfAPIInFlight bounds the requests under way: each runs on its own
	// goroutine so that a slow reply does not hold up the open loop.
	cfAPIInFlight = 64
)

// cfAPIPublisher sends the writers' publishes over keep-alive HTTP
// connections, one endpoint per instance.
type cfAPIPublisher struct {
	g      *loadgen
	key    string
	urls   []string // by instance (cfg.URLs order)
	client *http.Client
	slots  chan struct{}
	wg     sync.WaitGroup // requests under way
}

func newCfAPIPublisher(g *loadgen) (*cfAPIPublisher, error) {
	p := &cfAPIPublisher{g: g, key: g.cfg.cfAPIKey, slots: make(chan struct{}, cfAPIInFlight)}
	for _, u := range g.cfg.URLs {
		api, err := cfAPIURL(u)
		if err != nil {
			return nil, err
		}
		p.urls = append(p.urls, api)
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	p.client = &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext, // no Proxy: loopback only
		MaxIdleConns:        cfAPIInFlight,
		MaxIdleConnsPerHost: cfAPIInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	return p, nil
}

// send records mutation n as sent by c now and posts it without waiting
// for the reply (it waits only for a free slot).
func (p *cfAPIPublisher) send(ctx context.Context, c *client, n int64) error {
	body := p.g.cfAPIPublishBody(n, c.user)
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.g.countSent(p.g.stamp(c, n))
	p.wg.Add(1)
	go func() {
		defer func() { <-p.slots; p.wg.Done() }()
		p.post(ctx, c, n, body)
	}()
	return nil
}

// post makes one request. Any reply acks mutation n (an error reply is
// counted by its code, as an error frame is on a socket); a request that
// gets no reply is counted as api_request unless the run is ending.
func (p *cfAPIPublisher) post(ctx context.Context, c *client, n int64, body []byte) {
	g := p.g
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.urls[c.inst], bytes.NewReader(body))
	if err != nil {
		g.count(&g.errCodes, "api_request")
		c.unanswered(n)
		return
	}
	req.Header.Set("X-API-Key", p.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.client.Do(req)
	if err == nil {
		var reply []byte
		reply, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close() // read to the end: the connection is reused
		if err == nil {
			now := g.now()
			if code := cfAPIErrorCode(res.StatusCode, reply); code != "" {
				g.count(&g.errCodes, code)
			}
			c.acked(n, now)
			return
		}
	}
	if ctx.Err() == nil {
		g.count(&g.errCodes, "api_request")
	}
	c.unanswered(n)
}

// cfAPIErrorCode names what went wrong with a server API reply, "" when
// the publish was accepted: a status other than 200 is http_<status>; a
// 200 with {"error":{"code":C,...}} (the API's default error mode) is
// centrifugo_<C>, as for a socket command.
func cfAPIErrorCode(status int, reply []byte) string {
	if status != http.StatusOK {
		return "http_" + strconv.Itoa(status)
	}
	if !bytes.Contains(reply, []byte(`"error":{`)) {
		return ""
	}
	if n, ok := intField(reply, `"code":`); ok {
		return "centrifugo_" + strconv.FormatInt(n, 10)
	}
	return "centrifugo"
}

// unanswered ends mutation n without a reply: the drain and the closed
// loop stop waiting for it; it is in no latency figure.
func (c *client) unanswered(n int64) {
	c.g.ackedAll.Add(1)
	if c.inflight.Load() == n {
		select {
		case c.ackCh <- struct{}{}:
		default:
		}
	}
}
