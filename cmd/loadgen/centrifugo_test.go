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
// commands; and the server API's POST /api/publish with X-API-Key.
type fakeCentrifugo struct {
	mu       sync.Mutex
	history  map[string][][]byte // channel -> data by offset-1
	subs     map[string]map[*websocket.Conn]bool
	pongs    atomic.Int64
	refusals atomic.Int64
	// socketPublishes and apiPublishes count accepted publishes by path.
	socketPublishes, apiPublishes atomic.Int64
	// jsonb: publications carry data as Postgres prints a JSONB value
	// (keys reordered, a space after every colon and comma), as from
	// Centrifugo's Postgres broker.
	jsonb atomic.Bool
	// lazyEpoch: a channel has no epoch until its first publication, and
	// recovery with an empty epoch does not check it, as with Centrifugo's
	// Postgres broker.
	lazyEpoch atomic.Bool
}

const fakeAPIKey = "fake-api-key"

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
	if r.URL.Path == "/api/publish" {
		f.servePublishAPI(w, r)
		return
	}
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
				f.socketPublishes.Add(1)
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

// servePublishAPI is the server API's publish: 401 without the key (as
// Centrifugo's API key middleware answers), else the publication and
// {"result":{...}}.
func (f *fakeCentrifugo) servePublishAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-API-Key") != fakeAPIKey {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Channel == "" || len(req.Data) == 0 {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	f.apiPublishes.Add(1)
	f.publish(r.Context(), req.Channel, req.Data)
	_, _ = w.Write([]byte(`{"result":{"epoch":"` + fakeEpoch + `"}}`))
}

// jsonbText prints JSON data roughly as Postgres prints a JSONB value:
// keys reordered, ": " and ", " between items (the test data has no
// such sequences inside strings).
func jsonbText(data []byte) []byte {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		panic(err)
	}
	b := mustJSON(v)
	b = bytes.ReplaceAll(b, []byte(`":`), []byte(`": `))
	return bytes.ReplaceAll(b, []byte(`,"`), []byte(`, "`))
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
	epoch := fakeEpoch
	if f.lazyEpoch.Load() && len(h) == 0 {
		epoch = ""
	}
	res := map[string]any{"recoverable": true, "epoch": epoch, "offset": len(h)}
	if s.Recover && (s.Epoch == fakeEpoch || (f.lazyEpoch.Load() && s.Epoch == "")) {
		var pubs []map[string]any
		for i := s.Offset; i < uint64(len(h)); i++ {
			pubs = append(pubs, map[string]any{"data": json.RawMessage(h[i]), "offset": i + 1})
		}
		res["publications"], res["recovered"], res["was_recovering"] = pubs, true, true
	}
	return mustJSON(map[string]any{"id": cmd.ID, "subscribe": res})
}

func (f *fakeCentrifugo) publish(ctx context.Context, channel string, data json.RawMessage) {
	if f.jsonb.Load() {
		data = jsonbText(data)
	}
	f.mu.Lock()
	f.history[channel] = append(f.history[channel], data)
	// data as it is (json.Marshal would compact a RawMessage)
	push := append(append([]byte(`{"push":{"channel":`+string(mustJSON(channel))+`,"pub":{"data":`), data...),
		`,"offset":`+strconv.Itoa(len(f.history[channel]))+`}}}`...)
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
// publications it missed, in order, from the subscribe reply; with
// --repeat, every resume of a round does, and each is a sample.
func TestResumeCentrifugo(t *testing.T) {
	t.Parallel()
	_, url := newFakeCentrifugo(t)
	out := filepath.Join(t.TempDir(), "resume.json")
	var stdout bytes.Buffer
	if err := runResume(context.Background(), []string{"--proto", "centrifugo", "--url", url, "--secret", fakeSecret,
		"--events", "50", "--rounds", "2", "--repeat", "3", "--json", out}, &stdout); err != nil {
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
	if res.Received != 300 || res.Missed != 0 || len(res.TimeToCurrent.Rounds) != 6 || len(res.Errors) != 0 {
		t.Fatalf("received %d, missed %d, rounds %v, errors %v", res.Received, res.Missed, res.TimeToCurrent.Rounds, res.Errors)
	}
}

// TestResumeCentrifugoNoEpoch: a channel that had no epoch when the
// socket left (never published to) is recovered all the same.
func TestResumeCentrifugoNoEpoch(t *testing.T) {
	t.Parallel()
	f, url := newFakeCentrifugo(t)
	f.lazyEpoch.Store(true)
	var stdout bytes.Buffer
	if err := runResume(context.Background(), []string{"--proto", "centrifugo", "--url", url, "--secret", fakeSecret,
		"--events", "20", "--rounds", "1"}, &stdout); err != nil {
		t.Fatalf("resume: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "received 20 changes") || !strings.Contains(stdout.String(), "missed 0") {
		t.Fatalf("%s", stdout.String())
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

// TestSocketsCentrifugoAPI: with --cf-publish api every write goes through
// POST /api/publish (none over a socket), its reply is the ack, and its
// publication reaches the user's other sockets as timed events, even with
// the data printed as Postgres prints JSONB.
func TestSocketsCentrifugoAPI(t *testing.T) {
	t.Parallel()
	f, url := newFakeCentrifugo(t)
	f.jsonb.Store(true)
	out := filepath.Join(t.TempDir(), "run.json")
	var stdout bytes.Buffer
	err := runSockets(context.Background(), []string{"--proto", "centrifugo", "--cf-publish", "api", "--cf-api-key", fakeAPIKey,
		"--url", url, "--secret", fakeSecret, "--users", "2", "--sockets", "6", "--rate", "200", "--warmup", "0",
		"--duration", "300ms", "--drain", "2s", "--settle", "0", "--json", out}, &stdout)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	res := readSocketsResult(t, out)
	if res.ErrorsTotal != 0 || res.Mutations.Acked == 0 || res.Mutations.Ack.N == 0 {
		t.Fatalf("errors %d, acked %d, ack samples %d\n%s", res.ErrorsTotal, res.Mutations.Acked, res.Mutations.Ack.N, stdout.String())
	}
	if f.socketPublishes.Load() != 0 || f.apiPublishes.Load() < res.Mutations.Acked {
		t.Fatalf("socket publishes %d, API publishes %d, acked %d", f.socketPublishes.Load(), f.apiPublishes.Load(), res.Mutations.Acked)
	}
	// each write reaches the user's two other sockets
	if n := res.Fanout.SameInstance.N; n < 2*res.Mutations.Acked {
		t.Fatalf("write-to-other-socket samples %d for %d acked writes\n%s", n, res.Mutations.Acked, stdout.String())
	}
	if res.Config.CfPublish != cfPublishAPI || !strings.Contains(stdout.String(), "server API") {
		t.Fatalf("cf_publish %q\n%s", res.Config.CfPublish, stdout.String())
	}
}

// TestSocketsCentrifugoAPIRefused: a wrong API key makes every write an
// error (http_401) that still ends the run on time; nothing is published.
func TestSocketsCentrifugoAPIRefused(t *testing.T) {
	t.Parallel()
	f, url := newFakeCentrifugo(t)
	out := filepath.Join(t.TempDir(), "run.json")
	err := runSockets(context.Background(), []string{"--proto", "centrifugo", "--cf-publish", "api", "--cf-api-key", "wrong",
		"--url", url, "--secret", fakeSecret, "--users", "1", "--sockets", "2", "--rate", "100", "--warmup", "0",
		"--duration", "200ms", "--drain", "2s", "--settle", "0", "--json", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res := readSocketsResult(t, out)
	if res.Mutations.Errors["http_401"] == 0 || res.Mutations.Errors["http_401"] != res.ErrorsTotal || f.apiPublishes.Load() != 0 {
		t.Fatalf("errors %v (total %d), API publishes %d", res.Mutations.Errors, res.ErrorsTotal, f.apiPublishes.Load())
	}
}

func readSocketsResult(t *testing.T, path string) socketsResult {
	t.Helper()
	var res socketsResult
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCfAPIPublishBody: the server API body names the channel and carries
// the very data a socket publish of the same mutation carries.
func TestCfAPIPublishBody(t *testing.T) {
	g := &loadgen{runTag: "t", pad: "xx"}
	var body struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(g.cfAPIPublishBody(7, `u"1`), &body); err != nil {
		t.Fatal(err)
	}
	var pub fakeCommand
	if err := json.Unmarshal(g.cfPublishFrame(7, `u"1`), &pub); err != nil {
		t.Fatal(err)
	}
	if body.Channel != `u"1` || !bytes.Equal(body.Data, pub.Publish.Data) {
		t.Fatalf("channel %q, data %s, socket publish data %s", body.Channel, body.Data, pub.Publish.Data)
	}
	var data struct {
		Type string `json:"type"`
		Task struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"task"`
	}
	if err := json.Unmarshal(body.Data, &data); err != nil || data.Type != "task.created" || data.Task.Title != "lg-t-7" || data.Task.Description != "xx" {
		t.Fatalf("data %+v: %v", data, err)
	}
}

func TestCfAPIURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8000/connection/websocket":      "http://127.0.0.1:8000/api/publish",
		"wss://localhost:8443/connection/websocket?x=1": "https://localhost:8443/api/publish",
		"http://127.0.0.1:8000/connection/websocket":    "",
	} {
		got, err := cfAPIURL(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("cfAPIURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCfAPIErrorCode(t *testing.T) {
	for _, c := range []struct {
		status int
		reply  string
		want   string
	}{
		{200, `{"result":{"offset":3,"epoch":"e"}}`, ""},
		{200, `{"result":{}}`, ""},
		{200, `{"error":{"code":102,"message":"unknown channel"}}`, "centrifugo_102"},
		{200, `{"error":{"message":"?"}}`, "centrifugo"},
		{401, "Unauthorized\n", "http_401"},
		{503, `{"error":{"code":108}}`, "http_503"},
	} {
		if got := cfAPIErrorCode(c.status, []byte(c.reply)); got != c.want {
			t.Errorf("cfAPIErrorCode(%d, %s) = %q, want %q", c.status, c.reply, got, c.want)
		}
	}
}

// TestTitleNumber: the mutation number is found in compact JSON and in
// JSON as Postgres prints JSONB, and only in a title of this run.
func TestTitleNumber(t *testing.T) {
	g := &loadgen{runTag: "ab12", titleValue: []byte(`"lg-ab12-`)}
	for frame, want := range map[string]int64{
		`{"type":"task.created","task":{"user_id":"lg-ab12-u3","title":"lg-ab12-42","description":""}}`:                                 42,
		`{"push":{"channel":"lg-ab12-u3","pub":{"data":{"seq": 8, "task": {"id": 8, "title": "lg-ab12-7", "user_id": "lg-ab12-u3"}}}}}`: 7,
		`{"task":{"title":"other title","description":"x","title":"lg-ab12-5"}}`:                                                        5,
		`{"task":{"title":"lg-zz99-42"}}`:   -1,
		`{"task":{"user_id":"lg-ab12-u3"}}`: -1,
		`{"task":{"title":"lg-ab12-"}}`:     -1,
	} {
		n, ok := g.titleNumber([]byte(frame))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("titleNumber(%s) = %d, want %d", frame, n, want)
		}
	}
}
