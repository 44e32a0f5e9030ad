package realtime

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the connection under a cork,
// and the write deadlines set on it.
type countingConn struct {
	net.Conn
	writes    atomic.Int64
	deadlines atomic.Int64
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tcpPair returns both ends of a loopback TCP connection: the cork under
// test needs a real socket (kernel buffers, write deadlines).
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// readN reads n bytes from c, failing the test after a deadline.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// Frames written while corked reach the kernel in one write per corkLimit
// bytes, in order; a frame larger than the limit is written as it is.
func TestCorkCoalescesWrites(t *testing.T) {
	t.Parallel()
	srv, cli := tcpPair(t)
	cc := &countingConn{Conn: srv}
	c := newCorkConn(cc, 5*time.Second)

	var want bytes.Buffer
	got := make(chan []byte, 1)
	const frames, size = 1000, 200
	big := bytes.Repeat([]byte{'B'}, corkLimit+1)
	total := frames*size + len(big)
	go func() { got <- readN(t, cli, total) }()

	c.cork()
	for i := range frames {
		f := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		want.Write(f)
		if n, err := c.Write(f); n != size || err != nil {
			t.Fatalf("corked write %d: %d, %v", i, n, err)
		}
	}
	want.Write(big)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	// 1000 frames of 200 bytes: 327 fit in 64 KiB, so 4 writes; the big
	// frame goes out in its own write after the third.
	if n := cc.writes.Load(); n != 5 {
		t.Fatalf("%d writes for %d frames, want 5", n, frames+1)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatal("the peer received other bytes than were written, or in another order")
	}

	// Uncorked, every write goes through at once.
	c.Write([]byte("x"))
	c.Write([]byte("y"))
	if n := cc.writes.Load(); n != 7 {
		t.Fatalf("%d writes after two uncorked ones, want 7", n)
	}
	if b := readN(t, cli, 2); string(b) != "xy" {
		t.Fatalf("uncorked: got %q", b)
	}
}

// A write by another goroutine while corked (a pong from the reader, a
// ping) waits in the buffer, after what was corked before it, and goes
// out at uncork.
func TestCorkHoldsOtherWritersUntilUncork(t *testing.T) {
	t.Parallel()
	srv, cli := tcpPair(t)
	cc := &countingConn{Conn: srv}
	c := newCorkConn(cc, 5*time.Second)

	c.cork()
	c.Write([]byte("frame1;"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Write([]byte("pong;")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c.Write([]byte("frame2;"))
	if n := cc.writes.Load(); n != 0 {
		t.Fatalf("%d writes reached the connection while corked", n)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load(); n != 1 {
		t.Fatalf("%d writes at uncork, want 1", n)
	}
	want := "frame1;" + string(bytes.Repeat([]byte("pong;"), 8)) + "frame2;"
	if b := readN(t, cli, len(want)); string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// A peer that reads nothing makes the cork's write fail within the
// timeout, as a timeout (the session counts it as stuck), and every later
// write fails too.
func TestCorkDropsPeerThatReadsNothing(t *testing.T) {
	t.Parallel()
	srv, _ := tcpPair(t)
	const timeout = 200 * time.Millisecond
	c := newCorkConn(srv, timeout)

	chunk := bytes.Repeat([]byte{'z'}, 32<<10)
	start := time.Now()
	var err error
	c.cork()
	// Far more than loopback's kernel buffers can hold (a few MB).
	for i := 0; i < 4096 && err == nil; i++ {
		_, err = c.Write(chunk)
	}
	if uerr := c.uncork(); err == nil {
		err = uerr
	}
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !c.stuck() {
		t.Fatalf("err %v, stuck %v: want a write timeout", err, c.stuck())
	}
	// The first blocked write gets timeout, then fails: allow for the
	// time the writes into the kernel buffers took.
	if took > timeout+5*time.Second {
		t.Fatalf("dropped after %v, timeout %v", took, timeout)
	}
	if _, err := c.Write([]byte("more")); err == nil {
		t.Fatal("a write after the timeout succeeded")
	}
}

// Close offers what is corked to the kernel before closing: the close
// frame coder/websocket writes from the reader, and closes right after,
// is not lost.
func TestCorkCloseWritesWhatIsHeld(t *testing.T) {
	t.Parallel()
	srv, cli := tcpPair(t)
	c := newCorkConn(srv, 5*time.Second)
	c.cork()
	c.Write([]byte("close-frame"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(cli)
	if err != nil || string(b) != "close-frame" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := c.uncork(); err == nil {
		t.Fatal("uncork after Close succeeded")
	}
}

// A peer that reads, however slowly, renews the deadline: only one that
// accepts nothing for the timeout is dropped.
func TestCorkKeepsSlowReader(t *testing.T) {
	t.Parallel()
	srv, cli := tcpPair(t)
	const timeout = 300 * time.Millisecond
	c := newCorkConn(srv, timeout)

	// More than loopback's kernel buffers hold, so that the write waits
	// on the reader for several timeouts.
	const total = 32 << 20
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		c.cork()
		_, err := c.Write(bytes.Repeat([]byte{'s'}, total))
		if uerr := c.uncork(); err == nil {
			err = uerr
		}
		done <- err
	}()
	buf := make([]byte, 256<<10)
	cli.SetReadDeadline(time.Now().Add(time.Minute))
	for read := 0; read < total; {
		n, err := io.ReadFull(cli, buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v (writer: %v)", read, err, <-done)
		}
		read += n
		time.Sleep(timeout / 10) // pacing a slow client, not waiting for the server
	}
	if err := <-done; err != nil {
		t.Fatalf("slow reader dropped after %v: %v", time.Since(start), err)
	}
	if took := time.Since(start); took < 2*timeout {
		t.Fatalf("the write took %v: the test did not make it wait for the reader past the timeout", took)
	}
}

// Writes close together share a deadline (setting one per write was a
// measurable share of the server's CPU), and each still gets at least the
// timeout: a deadline is set again once a tenth of the timeout has passed.
func TestCorkSetsFewDeadlines(t *testing.T) {
	t.Parallel()
	srv, cli := tcpPair(t)
	go io.Copy(io.Discard, cli)
	raw := &countingConn{Conn: srv}
	const timeout = time.Hour // no renewal is due during the test
	c := newCorkConn(raw, timeout)
	for i := 0; i < 1000; i++ {
		if _, err := c.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
	}
	if w, d := raw.writes.Load(), raw.deadlines.Load(); w != 1000 || d != 1 {
		t.Fatalf("%d writes, %d deadlines set; want 1000 and 1", w, d)
	}
	// Past a tenth of the timeout, the next write sets a new deadline.
	short := newCorkConn(raw, 50*time.Millisecond)
	raw.deadlines.Store(0)
	short.Write([]byte("a"))
	deadline := time.Now().Add(10 * time.Second)
	for raw.deadlines.Load() < 2 && time.Now().Before(deadline) {
		if _, err := short.Write([]byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	if n := raw.deadlines.Load(); n < 2 {
		t.Fatalf("%d deadlines set over 10 s of writes with a 50 ms timeout: never renewed", n)
	}
}
