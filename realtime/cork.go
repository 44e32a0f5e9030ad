package realtime

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Write coalescing.
//
// coder/websocket flushes its buffered writer at the end of every message:
// one write syscall per frame. A session's writer takes every frame queued
// since it last woke (a replay page, a burst of events) and writes them
// one after the other, so a socket catching up on 1,000 events made 1,000
// write syscalls, and write syscalls were most of the server's CPU in the
// broadcast benchmark.
//
// So the server slips a [corkConn] under coder/websocket: the net.Conn it
// hijacks is wrapped ([corkingWriter]), and the writer corks it for the
// frames of one wake-up. While corked, what coder/websocket flushes is
// appended to a buffer; uncork hands the buffer to the kernel in one write
// (or one per corkLimit bytes). Nothing changes on the wire but the
// segment boundaries.
//
// Timeouts: every write to the kernel, corked or not and whoever makes
// it, gets at least the session's WriteTimeout (at most a tenth more; the
// deadline is not set again for writes close together), renewed when the
// kernel took some of the bytes: a peer that accepts nothing for
// WriteTimeout is still dropped, and the writer learns it was a timeout
// ([corkConn.stuck]). So the writer no longer gives
// coder/websocket a deadline context per wake-up (a timer, and a
// context.AfterFunc per frame): its frames are written without one, and
// one AfterFunc for the session's life closes the connection when the
// session ends, which ends a write in progress as a cancelled context did.

// corkLimit is the most a cork buffers: passing it writes the buffer out at
// once. A frame this large or larger is written out without copying.
const corkLimit = 64 << 10

// corkBuffers holds the buffers of corks in use: an idle socket holds
// none.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, corkLimit); return &b }}

// corkConn is a net.Conn whose writes can be held back (corked) and then
// written out together. Every method may be called concurrently: besides
// the session's writer, coder/websocket writes pongs and close frames from
// the reader, and pings from the session's ping goroutine; a frame written
// by them while corked goes out at the writer's uncork, which always
// follows.
type corkConn struct {
	net.Conn
	timeout time.Duration // per write to the kernel, renewed on progress

	mu      sync.Mutex // held while writing to the kernel
	renewAt time.Time  // a kernel write that starts after this sets a new deadline
	corked  bool
	buf     *[]byte // from corkBuffers while corked and non-empty
	err     error   // the first failed kernel write: every later one fails with it
}

func newCorkConn(c net.Conn, timeout time.Duration) *corkConn {
	return &corkConn{Conn: c, timeout: timeout}
}

// Write sends p, or appends it to the buffer while corked.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.writeOut(p)
	}
	if c.buf != nil && len(*c.buf)+len(p) > corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= corkLimit {
		return c.writeOut(p)
	}
	if c.buf == nil {
		c.buf = corkBuffers.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// writeOut writes p to the kernel, with c.mu held, with at least timeout
// for the kernel to take it, renewed whenever the kernel takes part of it.
// A failure is kept: the stream may end in the middle of a frame, so
// nothing more may be written.
//
// The deadline is set to timeout plus a tenth and kept for the writes that
// start within a tenth of timeout of it being set, so each of them still
// gets at least timeout (and a peer that accepts nothing is dropped after
// timeout to 1.1 timeout): SetWriteDeadline was 6.6% of the server's CPU in
// the broadcast benchmark when it ran before every write of a frame.
func (c *corkConn) writeOut(p []byte) (int, error) {
	n := 0
	for {
		if now := time.Now(); now.After(c.renewAt) {
			if err := c.Conn.SetWriteDeadline(now.Add(c.timeout + c.timeout/10)); err != nil {
				c.err = err
				return n, err
			}
			c.renewAt = now.Add(c.timeout / 10)
		}
		m, err := c.Conn.Write(p[n:])
		n += m
		if err == nil {
			return n, nil
		}
		if m > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			c.renewAt = time.Time{} // slow, but the peer reads: a new deadline
			continue
		}
		c.err = err
		return n, err
	}
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	_, err := c.writeOut(*c.buf)
	*c.buf = (*c.buf)[:0]
	corkBuffers.Put(c.buf)
	c.buf = nil
	return err
}

// cork holds writes back until uncork. Only the session's writer corks.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes out what was held back and stops holding writes back. It
// must follow every cork, on every path: a pong or close frame written
// meanwhile by another goroutine waits in the buffer until then.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.err != nil {
		c.dropLocked()
		return c.err
	}
	return c.flushLocked()
}

func (c *corkConn) dropLocked() {
	if c.buf != nil {
		*c.buf = (*c.buf)[:0]
		corkBuffers.Put(c.buf)
		c.buf = nil
	}
}

// stuck reports whether a write to the kernel failed because the peer
// accepted nothing for the timeout.
func (c *corkConn) stuck() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Is(c.err, os.ErrDeadlineExceeded)
}

// closeFlushWait bounds the last write of Close.
const closeFlushWait = 10 * time.Millisecond

// abort closes the connection at once, ending a write in progress; the
// writer's session calls it when it ends (context.AfterFunc).
func (c *corkConn) abort() { c.Conn.Close() }

// Close closes the connection. coder/websocket closes it right after a
// close frame in one case (answering the peer's close from the reader),
// and that frame may be held back by the writer's cork: what is buffered
// is offered to the kernel first, for closeFlushWait at most (a peer that
// reads takes it at once). Close never waits for a write in progress: it
// closes the connection under it, which ends that write.
func (c *corkConn) Close() error {
	if c.mu.TryLock() {
		if c.err == nil && c.buf != nil && len(*c.buf) > 0 {
			if err := c.Conn.SetWriteDeadline(time.Now().Add(closeFlushWait)); err == nil {
				_, _ = c.Conn.Write(*c.buf)
			}
		}
		c.dropLocked()
		if c.err == nil {
			c.err = net.ErrClosed
		}
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// corkingWriter is the ResponseWriter given to websocket.Accept: its
// Hijack hands coder/websocket a corkConn (conn, once hijacked) and a
// bufio.ReadWriter whose Writer writes to it.
type corkingWriter struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *corkConn
}

func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	raw, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http has flushed the response (101) before handing the
	// connection over; flush anyway in case a wrapper buffered some.
	if err := brw.Writer.Flush(); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	w.conn = newCorkConn(raw, w.timeout)
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}
