package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// Centrifugo (github.com/centrifugal/centrifugo) is the benchmark peer of
// docs/BENCHMARKS.md: `loadgen sockets --proto centrifugo` drives it with
// the same sockets, rates and frames as tasksync, speaking its
// bidirectional JSON protocol (github.com/centrifugal/protocol) over
// WebSocket:
//
//   - a command is {"id":N,"<method>":{...}}; its reply is
//     {"id":N,"<method>":{...}} or {"id":N,"error":{"code":C,"message":M}};
//   - a frame may hold several commands or replies, one JSON object a line;
//   - an asynchronous message is {"push":{"channel":C,"pub":{"data":D,"offset":O}}};
//   - the server's ping is an empty object {}, answered with {} when the
//     connect reply said "pong":true.
//
// Each socket connects with an HS256 JWT of its user (sub = user id, the
// same token tasksync takes, signed with Centrifugo's
// client.token.hmac_secret_key) and subscribes to its user's channel (the
// channel is named after the user: the user's devices are its
// subscribers, as a tasksync user's sockets are). A writer publishes
// task.created-shaped data into its user's channel; the publish reply is
// its ack, and the publication on the user's other sockets is the event.

const (
	protoTasksync   = "tasksync"
	protoCentrifugo = "centrifugo"

	// Command ids of the handshake; publishes use cfPublishIDBase+n for
	// mutation n, so a reply's id names its mutation.
	cfConnectID     = 1
	cfSubscribeID   = 2
	cfPublishIDBase = 16
)

// cfHandshake is the first frame of a socket: connect with the token,
// then subscribe to the user's channel (the server runs a frame's
// commands in order).
func cfHandshake(token, channel string) []byte {
	b := append(cfConnect(token), `
{"id":2,"subscribe":{"channel":`...)
	b = strconv.AppendQuote(b, channel)
	return append(b, `}}`...)
}

// cfConnect is the connect command (id 1) with a token.
func cfConnect(token string) []byte {
	b := []byte(`{"id":1,"connect":{"token":`)
	b = strconv.AppendQuote(b, token)
	return append(b, `,"name":"loadgen"}}`...)
}

// cfTaskTimestamp stands in for created_at/updated_at so that the data has
// the size of a tasksync task event.
const cfTaskTimestamp = `"2026-11-25T19:25:40.577141Z"`

// cfPublishFrame publishes mutation n into channel from a socket: the
// client protocol's publish command carrying cfTaskData.
func (g *loadgen) cfPublishFrame(n int64, channel string) []byte {
	b := make([]byte, 0, 384+len(g.pad))
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, n+cfPublishIDBase, 10)
	b = append(b, `,"publish":{"channel":`...)
	b = strconv.AppendQuote(b, channel)
	b = append(b, `,"data":`...)
	b = g.appendCfTaskData(b, n, channel)
	return append(b, `}}`...)
}

// cfAPIPublishBody publishes mutation n into channel through the server
// API (POST /api/publish): the same data as cfPublishFrame.
func (g *loadgen) cfAPIPublishBody(n int64, channel string) []byte {
	b := make([]byte, 0, 384+len(g.pad))
	b = append(b, `{"channel":`...)
	b = strconv.AppendQuote(b, channel)
	b = append(b, `,"data":`...)
	b = g.appendCfTaskData(b, n, channel)
	return append(b, '}')
}

// appendCfTaskData appends the data of mutation n, shaped as the
// task.created event tasksync would send for the same mutation (same
// fields, same title and description); what differs is each protocol's
// envelope (Centrifugo's push adds the channel, offset, epoch and, for a
// client-side publish, the publisher's client info).
func (g *loadgen) appendCfTaskData(b []byte, n int64, channel string) []byte {
	b = append(b, `{"type":"task.created","seq":`...)
	b = strconv.AppendInt(b, n+1, 10)
	b = append(b, `,"task":{"id":`...)
	b = strconv.AppendInt(b, n+1, 10)
	b = append(b, `,"user_id":`...)
	b = strconv.AppendQuote(b, channel)
	b = append(b, `,"title":"lg-`...)
	b = append(b, g.runTag...)
	b = append(b, '-')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","description":"`...)
	b = append(b, g.pad...)
	return append(b, `","completed":false,"priority":"medium","tags":[],"due_date":null,"due_at":null,"remind_at":null,"recurrence":null,"tz":null,"series_id":null,"created_at":`+cfTaskTimestamp+
		`,"updated_at":`+cfTaskTimestamp+`,"version":1}}`...)
}

// cfAPIURL is the server API's publish endpoint of the Centrifugo whose
// socket URL is wsURL (same host and port, Centrifugo's default
// http_api.handler_prefix /api).
func cfAPIURL(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", wsURL, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("%q is not a ws:// or wss:// URL", wsURL)
	}
	u.Path, u.RawQuery, u.Fragment = "/api/publish", "", ""
	return u.String(), nil
}

var (
	cfPing      = []byte(`{}`)
	cfPushStart = []byte(`{"push":`)
	cfIDStart   = []byte(`{"id":`)
)

// handleCentrifugo classifies every line of one server frame by its
// prefix, as handle does for tasksync frames: a publication is an event,
// a reply with a publish id an ack, the subscribe reply the greeting.
func (c *client) handleCentrifugo(frame []byte) {
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case bytes.Equal(line, cfPing):
			c.cfPong()
		case bytes.HasPrefix(line, cfPushStart):
			c.recordEvent(line)
		case bytes.HasPrefix(line, cfIDStart):
			c.cfReply(line)
		default:
			c.g.other.Add(1)
		}
	}
}

// cfPong answers the server's ping off the read loop (the read loop must
// keep reading); a ping comes every 25 s, so one goroutine per ping is cheap.
func (c *client) cfPong() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.conn.Write(ctx, websocket.MessageText, cfPing)
	}()
}

// recordEvent counts a delivered change (a tasksync event frame or a
// Centrifugo publication), and its latency when it carries a mutation this
// run sent from another socket.
func (c *client) recordEvent(frame []byte) {
	g := c.g
	now := g.now()
	if g.inWindow(now) {
		g.delivered.Add(1)
		g.deliveredBytes.Add(int64(len(frame)))
	}
	if g.sendAt == nil {
		return
	}
	n, ok := g.titleNumber(frame)
	if !ok || n < 0 || n >= int64(len(g.sendAt)) {
		return
	}
	by := int(g.sendBy[n].Load()) - 1
	at := g.sendAt[n].Load()
	if by < 0 || by == c.idx || !g.inWindow(at) {
		return
	}
	if g.clients[by].inst == c.inst {
		g.same.record(time.Duration(now - at))
	} else {
		g.cross.record(time.Duration(now - at))
	}
}

var titleKey = []byte(`"title":`)

// titleNumber is the mutation number n in the title of a task this run
// created (`"title":"lg-<run>-<n>"`), if frame carries one. Spaces may
// follow the colon: Centrifugo's Postgres broker keeps data as JSONB and
// sends it as Postgres prints it (`"title": "lg-..."`, keys reordered).
func (g *loadgen) titleNumber(frame []byte) (int64, bool) {
	for {
		i := bytes.Index(frame, titleKey)
		if i < 0 {
			return 0, false
		}
		frame = bytes.TrimLeft(frame[i+len(titleKey):], " ")
		if bytes.HasPrefix(frame, g.titleValue) {
			return leadingInt(frame[len(g.titleValue):])
		}
	}
}

// cfReply handles the reply to a command of ours.
func (c *client) cfReply(line []byte) {
	g := c.g
	now := g.now()
	id, ok := leadingInt(line[len(cfIDStart):])
	if !ok {
		g.other.Add(1)
		return
	}
	if bytes.Contains(line, []byte(`"error":{`)) {
		code := "centrifugo"
		if n, ok := intField(line, `"code":`); ok {
			code = "centrifugo_" + strconv.FormatInt(n, 10)
		}
		g.count(&g.errCodes, code)
		if id < cfPublishIDBase {
			// a refused connect or subscribe: the socket is of no use
			_ = c.conn.Close(websocket.StatusNormalClosure, "handshake refused")
			return
		}
		c.acked(id-cfPublishIDBase, now)
		return
	}
	switch {
	case id == cfConnectID:
		c.instance = stringField(line, `"client":"`)
	case id == cfSubscribeID:
		if c.helloed.CompareAndSwap(false, true) {
			close(c.hello)
		}
	case id >= cfPublishIDBase:
		c.acked(id-cfPublishIDBase, now)
	default:
		g.other.Add(1)
	}
}

// cfPublication is a publication in a subscribe reply (recovery) or push.
type cfPublication struct {
	Data   json.RawMessage `json:"data"`
	Offset uint64          `json:"offset"`
}

// cfSubscribeResult is the part of a subscribe reply that recovery reads.
type cfSubscribeResult struct {
	Recoverable  bool            `json:"recoverable"`
	Epoch        string          `json:"epoch"`
	Offset       uint64          `json:"offset"`
	Publications []cfPublication `json:"publications"`
	Recovered    bool            `json:"recovered"`
}

// cfReplyFrame is one reply line, decoded in full (the resume scenario
// only: the broadcast path above reads prefixes, to stay cheap).
type cfReplyFrame struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Connect *struct {
		Client string `json:"client"`
		Pong   bool   `json:"pong"`
	} `json:"connect"`
	Subscribe *cfSubscribeResult `json:"subscribe"`
	Push      *struct {
		Channel string         `json:"channel"`
		Pub     *cfPublication `json:"pub"`
	} `json:"push"`
}
