package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// wireFrame is one WebSocket frame as it came off the wire.
type wireFrame struct {
	fin, masked bool
	rsv, opcode byte
	payload     []byte
}

func readWireFrame(r io.Reader) (wireFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return wireFrame{}, err
	}
	f := wireFrame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, opcode: h[0] & 0x0f, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 16<<20 {
		return f, fmt.Errorf("frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(r, f.payload)
	return f, err
}

// writeWireFrame writes one masked client frame (fin set).
func writeWireFrame(w io.Writer, opcode byte, payload []byte) error {
	b := []byte{0x80 | opcode, 0x80 | byte(len(payload))} // control frames: < 126 bytes
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	_, err := w.Write(b)
	return err
}

// The frames of a replay reach the client whole and in order, however the
// server coalesced them into writes: read off the wire, every message is a
// single unmasked text frame with fin set and a JSON payload, hello first,
// then every missed event once in seq order. Pongs to pings the client
// sends during the replay (written by the server's reader while the
// writer may be corked) arrive too, each whole, in the order of the pings.
//
// Without ?batch=1 a message is one frame (what wscat users get); with it,
// a message holds several frames, a line each, in the same order, at most
// 64 KiB of them unless one frame is larger, and hello says batch.
func TestReplayFramesArriveWholeAndInOrder(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	t.Run("one frame a message", func(t *testing.T) { replayOffTheWire(t, env, a, false) })
	t.Run("batch", func(t *testing.T) { replayOffTheWire(t, env, a, true) })
}

// A batch value other than 0 or 1 is refused before the upgrade.
func TestBatchParameterIsChecked(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	a := env.start(env.config(nil))
	for _, v := range []string{"yes", "2", "true"} {
		req, err := http.NewRequest("GET", "http"+a.WS[len("ws"):]+"?batch="+v, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok(t, "batchparam", time.Hour))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("batch must be 1")) {
			t.Errorf("batch=%s: %s %s, want 400 naming batch", v, res.Status, body)
		}
	}
}

func replayOffTheWire(t *testing.T, env *testEnv, a *instance, batch bool) {
	user, query := "rawframes", "since=0"
	if batch {
		user, query = "rawframes-batch", "since=0&batch=1"
	}

	// Enough events for several replay pages and several of the cork's
	// 64 KiB writes; every 7th frame is larger than coder/websocket's
	// 4 KiB write buffer.
	const n = 1500
	if _, err := env.DB.Pool.Exec(context.Background(), `
		INSERT INTO tasks (user_id, title, tags)
		SELECT $2, 'task ' || i, CASE WHEN i % 7 = 0 THEN ARRAY[repeat('t', 5000)] ELSE '{}' END
		FROM generate_series(1, $1) AS i`, n, user); err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse(a.WS)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var key [16]byte
	rand.Read(key[:])
	fmt.Fprintf(conn, "GET /ws?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		query, u.Host, base64.StdEncoding.EncodeToString(key[:]), tok(t, user, time.Hour))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", res.Status)
	}

	const pings = 20
	pingErr := make(chan error, 1)
	go func() {
		for i := range pings {
			if err := writeWireFrame(conn, 0x9, fmt.Appendf(nil, "ping-%02d", i)); err != nil {
				pingErr <- err
				return
			}
		}
		pingErr <- nil
	}()

	var events, pongs, messages, joined int
	helloSeen := false
	for events < n || pongs < pings {
		f, err := readWireFrame(br)
		if err != nil {
			t.Fatalf("after %d events and %d pongs: %v", events, pongs, err)
		}
		if !f.fin || f.rsv != 0 || f.masked {
			t.Fatalf("frame: fin %v, rsv %#x, masked %v: want a single unmasked frame", f.fin, f.rsv, f.masked)
		}
		switch f.opcode {
		case 0xA:
			if want := fmt.Sprintf("ping-%02d", pongs); string(f.payload) != want {
				t.Fatalf("pong %q, want %q", f.payload, want)
			}
			pongs++
		case 0x1:
			lines := bytes.Split(f.payload, []byte{'\n'})
			messages++
			if len(lines) > 1 {
				joined++
				if !batch {
					t.Fatalf("message of %d frames without batch: %.80q", len(lines), f.payload)
				}
				if len(f.payload) > 64<<10 {
					t.Fatalf("message of %d frames, %d bytes: over 64 KiB", len(lines), len(f.payload))
				}
			}
			for _, l := range lines {
				var fr struct {
					Type  string `json:"type"`
					Seq   int64  `json:"seq"`
					Batch bool   `json:"batch"`
				}
				if err := json.Unmarshal(l, &fr); err != nil {
					t.Fatalf("frame %.80q: %v", l, err)
				}
				switch {
				case !helloSeen: // the first text frame; a pong may come before it
					if fr.Type != "hello" || fr.Seq != n || fr.Batch != batch {
						t.Fatalf("first frame %.80q, want hello with seq %d, batch %v", l, n, batch)
					}
					helloSeen = true
				case fr.Type == "task.created":
					if fr.Seq != int64(events+1) {
						t.Fatalf("event seq %d, want %d", fr.Seq, events+1)
					}
					events++
				case fr.Type == "presence" || fr.Type == "synced":
				default:
					t.Fatalf("unexpected frame %.80q", l)
				}
			}
		default:
			t.Fatalf("opcode %#x", f.opcode)
		}
	}
	if err := <-pingErr; err != nil {
		t.Fatal(err)
	}
	if batch && joined == 0 {
		t.Fatalf("batch: %d events in %d messages, none of several frames", events, messages)
	}
	t.Logf("%d events in %d messages (%d of several frames)", events, messages, joined)
}
