package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

const fakeSecret = "fake-centrifugo-secret-0123456789abcdef"

// fakeCentrifugo speaks the part of Centrifugo's JSON protocol that the
// load tool uses, as the real server does on the wire: connect with an
// HS256 token, subscribe (with recovery from offset and epoch), publish
// into channels with history, pushes, pings answered with pongs, and
// several replies in one frame (one a line) when a frame held several
// commands.
type fakeCentrifugo struct {
	mu       sync.Mutex
	history  map[string][][]byte // channel -> data by offset-1
	subs     map[string]map[*websocket.Conn]bool
	pongs    atomic.Int64
	refusals atomic.Int64
}

const fakeEpoch = "fake-epoch"

func newFakeCentrifugo(t *testing.T) (*fakeCentrifugo, string) {
	t.Helper()
	f := &fakeCentrifugo{history: map[string][][]byte{}, subs: map[string]map[*websocket.Conn]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket"
}

type fakeCommand struct {
	ID      uint32 `json:"id"`
	Connect *struct {
		Token string `json:"token"`
	} `json:"connect"`
	Subscribe *struct {
		Channel string `json:"channel"`
		Recover bool   `json:"recover"`
		Offset  uint64 `json:"offset"`
		Epoch   string `json:"epoch"`
	} `json:"subscribe"`
	Publish *struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	} `json:"publish"`
}

func (f *fakeCentrifugo) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/connection/websocket" {
		http.NotFound(w, r)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	ctx := r.Context()
	defer f.drop(c)
	connected := false
	for {
		_, frame, err := c.Read(ctx)
		if err != nil {
			return
		}
		var replies [][]byte
		for _, line := range bytes.Split(frame, []byte{'\n'}) {
			if bytes.Equal(bytes.TrimSpace(line), []byte(`{}`)) {
				f.pongs.Add(1)
				continue
			}
			var cmd fakeCommand
			if err := json.Unmarshal(line, &cmd); err != nil {
				_ = c.Close(websocket.StatusCode(3501), "bad request")
				return
			}
			switch {
			case cmd.Connect != nil:
				_, err := jwt.Parse(cmd.Connect.Token, func(*jwt.Token) (any, error) { return []byte(fakeSecret), nil },
					jwt.WithValidMethods([]string{"HS256"}))
				if err != nil {
					f.refusals.Add(1)
					replies = append(replies, []byte(`{"id":1,"error":{"code":101,"message":"unauthorized"}}`))
					continue
				}
				connected = true
				// a ping right away: the client must answer it
				replies = append(replies, []byte(`{"id":1,"connect":{"client":"fake-client","version":"0.0.0","ping":25,"pong":true}}`), []byte(`{}`))
			case !connected:
				replies = append(replies, []byte(`{"id":`+itoa(cmd.ID)+`,"error":{"code":101,"message":"unauthorized"}}`))
			case cmd.Subscribe != nil:
				replies = append(replies, f.subscribe(c, cmd))
			case cmd.Publish != nil:
				f.publish(ctx, cmd.Publish.Channel, cmd.Publish.Data)
				replies = append(replies, []byte(`{"id":`+itoa(cmd.ID)+`,"publish":{}}`))
			}
		}
		if len(replies) > 0 {
			if err := c.Write(ctx, websocket.MessageText, bytes.Join(replies, []byte{'\n'})); err != nil {
				return
			}
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (f *fakeCentrifugo) subscribe(c *websocket.Conn, cmd fakeCommand) []byte {
	s := cmd.Subscribe
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[s.Channel] == nil {
		f.subs[s.Channel] = map[*websocket.Conn]bool{}
	}
	f.subs[s.Channel][c] = true
	h := f.history[s.Channel]
	res := map[string]any{"recoverable": true, "epoch": fakeEpoch, "offset": len(h)}
	if s.Recover && s.Epoch == fakeEpoch {
		var pubs []map[string]any
		for i := s.Offset; i < uint64(len(h)); i++ {
			pubs = append(pubs, map[string]any{"data": json.RawMessage(h[i]), "offset": i + 1})
		}
		res["publications"], res["recovered"], res["was_recovering"] = pubs, true, true
	}
	return mustJSON(map[string]any{"id": cmd.ID, "subscribe": res})
}

func (f *fakeCentrifugo) publish(ctx context.Context, channel string, data json.RawMessage) {
	f.mu.Lock()
	f.history[channel] = append(f.history[channel], data)
	push := mustJSON(map[string]any{"push": map[string]any{"channel": channel,
		"pub": map[string]any{"data": data, "offset": len(f.history[channel])}}})
	var to []*websocket.Conn
	for c := range f.subs[channel] {
		to = append(to, c)
	}
	f.mu.Unlock()
	for _, c := range to {
		_ = c.Write(ctx, websocket.MessageText, push)
	}
}

func (f *fakeCentrifugo) drop(c *websocket.Conn) {
	f.mu.Lock()
	for _, m := range f.subs {
		delete(m, c)
	}
	f.mu.Unlock()
	_ = c.CloseNow()
}

// TestSocketsCentrifugo: sockets of two users subscribe to their users'
// channels, one writer per user publishes in a closed loop; every
// publication reaches the user's three sockets, acks and events are
// counted, pings are answered, nothing is an error.
func TestSocketsCentrifugo(t *testing.T) {
	t.Parallel()
	f, url := newFakeCentrifugo(t)
	out := filepath.Join(t.TempDir(), "run.json")
	var stdout bytes.Buffer
	err := runSockets(context.Background(), []string{"--proto", "centrifugo", "--url", url, "--secret", fakeSecret,
		"--users", "2", "--sockets", "6", "--writers", "2", "--warmup", "0", "--duration", "300ms", "--drain", "2s", "--settle", "0",
		"--desc-bytes", "40", "--json", out}, &stdout)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	var res socketsResult
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Sockets.Opened != 6 || res.ErrorsTotal != 0 {
		t.Fatalf("opened %d, errors %d\n%s", res.Sockets.Opened, res.ErrorsTotal, stdout.String())
	}
	if res.Mutations.Acked == 0 || res.Events.Delivered < res.Mutations.Acked {
		t.Fatalf("acked %d, delivered %d\n%s", res.Mutations.Acked, res.Events.Delivered, stdout.String())
	}
	if res.Fanout.SameInstance.N == 0 {
		t.Fatalf("no write-to-other-socket samples\n%s", stdout.String())
	}
	if res.Config.Proto != protoCentrifugo || res.Events.FrameBytesAvg < 300 {
		t.Fatalf("proto %q, frame bytes %v: the data should be a task event", res.Config.Proto, res.Events.FrameBytesAvg)
	}
	// every socket got a ping; the answers are written off the read loop
	deadline := time.Now().Add(5 * time.Second)
	for f.pongs.Load() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("pongs: %d of 6", f.pongs.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSocketsCentrifugoRefused: a token the server refuses is a dial
// error, not a socket that counts as open.
func TestSocketsCentrifugoRefused(t *testing.T) {
	t.Parallel()
	f, url := newFakeCentrifugo(t)
	err := runSockets(context.Background(), []string{"--proto", "centrifugo", "--url", url,
		"--secret", strings.Repeat("w", 40), "--users", "1", "--sockets", "1", "--writers", "0",
		"--warmup", "0", "--duration", "10ms", "--drain", "0s", "--settle", "0", "--dial-timeout", "5s"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "closed before hello") {
		t.Fatalf("err = %v, want closed before hello", err)
	}
	if f.refusals.Load() != 1 {
		t.Fatalf("refusals %d", f.refusals.Load())
	}
}

// TestResumeCentrifugo: the resuming socket recovers exactly the
// publications it missed, in order, from the subscribe reply.
func TestResumeCentrifugo(t *testing.T) {
	t.Parallel()
	_, url := newFakeCentrifugo(t)
	out := filepath.Join(t.TempDir(), "resume.json")
	var stdout bytes.Buffer
	if err := runResume(context.Background(), []string{"--proto", "centrifugo", "--url", url, "--secret", fakeSecret,
		"--events", "50", "--rounds", "2", "--json", out}, &stdout); err != nil {
		t.Fatalf("resume: %v\n%s", err, stdout.String())
	}
	var res resumeResult
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Received != 100 || res.Missed != 0 || len(res.TimeToCurrent.Rounds) != 2 || len(res.Errors) != 0 {
		t.Fatalf("received %d, missed %d, rounds %v, errors %v", res.Received, res.Missed, res.TimeToCurrent.Rounds, res.Errors)
	}
}

// TestCentrifugoHandshakeFrame: the first frame is two commands, one a
// line, connect then subscribe, each valid JSON.
func TestCentrifugoHandshakeFrame(t *testing.T) {
	lines := bytes.Split(cfHandshake("a.b.c", `u"1`), []byte{'\n'})
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var connect, sub fakeCommand
	if err := json.Unmarshal(lines[0], &connect); err != nil || connect.ID != cfConnectID || connect.Connect.Token != "a.b.c" {
		t.Fatalf("connect %s: %v", lines[0], err)
	}
	if err := json.Unmarshal(lines[1], &sub); err != nil || sub.ID != cfSubscribeID || sub.Subscribe.Channel != `u"1` {
		t.Fatalf("subscribe %s: %v", lines[1], err)
	}
	g := &loadgen{runTag: "t", pad: "xx"}
	var pub fakeCommand
	if err := json.Unmarshal(g.cfPublishFrame(7, "u1"), &pub); err != nil || pub.ID != 7+cfPublishIDBase || pub.Publish.Channel != "u1" {
		t.Fatalf("publish: %v %+v", err, pub)
	}
}
