package tcp

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// Dial opens a connection from laddr (zero address or port: chosen by the
// route and the ephemeral range) to raddr and waits for the handshake,
// within ctx (RFC 9293 3.10.1 OPEN call, active).
func (p *Protocol) Dial(ctx context.Context, laddr, raddr netip.AddrPort) (*Conn, error) {
	c, err := p.Connect(laddr, raddr)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.established:
	case <-ctx.Done():
		c.mu.Lock()
		if !c.estDone {
			c.abortRequested = true
			c.err = ctx.Err()
			c.schedule()
		}
		c.mu.Unlock()
		<-c.established
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == SynSent || c.state == Closed || c.gone && c.err != nil {
		err := c.err
		if err == nil {
			err = ErrConnRefused
		}
		return nil, fmt.Errorf("tcp: dial %v: %w", raddr, err)
	}
	return c, nil
}

// Connect starts an active open and returns at once, the connection in
// SYN-SENT (Dial waits for the handshake; an event loop watches State or
// Established instead).
func (p *Protocol) Connect(laddr, raddr netip.AddrPort) (*Conn, error) {
	if !raddr.Addr().Is4() || raddr.Port() == 0 || raddr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("tcp: dial %v: %w", raddr, syscall.EINVAL)
	}
	r, err := p.st.Route(raddr.Addr(), laddr.Addr())
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %v: %w", raddr, err)
	}
	local := netip.AddrPortFrom(r.Src, laddr.Port())
	lp := p.st.LoopFor(r.NIC, local, raddr)
	c, err := p.newConn(p.loopState(lp), local, raddr)
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %v: %w", raddr, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key, err := p.table.Connect(c.key, c)
	if err != nil {
		c.abandon()
		return nil, fmt.Errorf("tcp: dial %v: %w", raddr, err)
	}
	c.key, c.inTable = key, true
	c.local = netip.AddrPortFrom(local.Addr(), key.LocalPort)
	c.initSend(p.st.Clock().Now(), r.MTU)
	p.rec.TCPOpen(c.id, c.local, c.remote, uint8(SynSent), true)
	c.setState(SynSent)
	p.c.inc(ActiveOpens)
	c.schedule()
	return c, nil
}

// Established returns a channel closed when the handshake completed or
// failed (then State is CLOSED and Err says why).
func (c *Conn) Established() <-chan struct{} { return c.established }

// Err returns why the connection ended, or nil.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// abandon releases a connection that never entered the table.
func (c *Conn) abandon() {
	c.p.conns.Add(-1)
	c.p.release(c.sndBuf.Cap() + c.rcvBuf.Cap())
	c.p.allMu.Lock()
	delete(c.p.all, c)
	c.p.allMu.Unlock()
}

// initSend picks the ISS and the options to offer (c.mu held; before the
// first segment). mtu is the path MTU towards the peer.
func (c *Conn) initSend(now time.Time, mtu int) {
	c.iss = seqnum.Value(c.p.isn.ISN(c.local, c.remote))
	c.sndUna, c.sndNxt, c.sndMax = c.iss, c.iss, c.iss
	c.rcvMSS = mtu - header.IPv4MinHeaderLen - header.TCPMinHeaderLen
	// A per-connection offset (RFC 7323 5.4) from the 4-tuple, not the
	// ISS: every incarnation of the 4-tuple shares it (RFC 6191 2).
	c.tsOffset = c.p.isn.TSOffset(c.local, c.remote)
	cfg := &c.p.cfg
	c.tsOK = !cfg.DisableTimestamps
	c.sackOK = !cfg.DisableSACK
	c.wsOK = !cfg.DisableWindowScaling
	c.rcvShift = 0
	if c.wsOK {
		c.rcvShift = windowShift(cfg.RecvBufferMax)
	}
}

// windowShift is the smallest shift that lets a 16-bit window field cover
// n bytes (RFC 7323 2.3), at most 14.
func windowShift(n int) uint8 {
	s := uint8(0)
	for s < header.TCPMaxWindowScale && n>>s > 0xffff {
		s++
	}
	return s
}

// Read reads received bytes (RFC 9293 3.10.3 RECEIVE call): it blocks
// until data, the end of the stream (io.EOF), an error, the read deadline
// or Close.
func (c *Conn) Read(b []byte) (int, error) {
	c.rmu.Lock() // one reader at a time, as package net's poller does
	defer c.rmu.Unlock()
	call := c.p.rec.Now()
	for {
		if err := c.base.CheckRead(); err != nil {
			return 0, err
		}
		c.mu.Lock()
		if c.rcvBuf != nil && c.rcvBuf.Len() > 0 {
			if len(b) == 0 {
				c.mu.Unlock()
				return 0, nil
			}
			n := c.rcvBuf.Read(b)
			c.p.rec.AppRead(c.id, call, c.rdOff, b[:n], false)
			c.rdOff += uint64(n)
			c.afterRead(n)
			if c.rcvBuf.Len() > 0 {
				c.base.Readable.Notify() // for another reader
			}
			c.mu.Unlock()
			return n, nil
		}
		if c.finRcvd {
			c.p.rec.AppRead(c.id, call, c.rdOff, nil, true)
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return 0, err
		}
		if c.state == Closed {
			c.mu.Unlock()
			return 0, ErrNotConn
		}
		c.mu.Unlock()
		if err := c.base.WaitReadable(); err != nil {
			return 0, err
		}
	}
}

// afterRead is the bookkeeping after the application took n bytes: the
// window opens (receiver SWS avoidance, RFC 9293 3.8.6.2.2: announce it
// once it grew by min(RCV.BUFF/2, MSS)), auto-tuning measures the rate, and
// a freed connection releases its ring once drained.
func (c *Conn) afterRead(n int) {
	if c.gone {
		if c.rcvBuf.Len() == 0 {
			c.p.release(c.rcvBuf.Cap())
			c.rcvBuf = nil
		}
		return
	}
	if !c.state.canReceive() {
		return
	}
	c.autotune(n)
	open := c.rcvWindow() - c.advertised()
	if open >= min(c.rcvCap/2, max(c.rcvMSS, 536)) && !mutated(MutNoWindowUpdate) {
		c.windowUpdate = true
		c.schedule()
	}
}

// Write queues b for sending (RFC 9293 3.10.2 SEND call). It blocks until
// all of b is in the send buffer, or an error, the write deadline or Close.
func (c *Conn) Write(b []byte) (int, error) {
	// One writer at a time, so that concurrent Writes do not interleave
	// their bytes (package net's guarantee).
	c.wmu.Lock()
	defer c.wmu.Unlock()
	call := c.p.rec.Now()
	n := 0
	defer func() {
		if n > 0 {
			c.mu.Lock()
			c.p.rec.AppWrite(c.id, call, c.wrOff, b[:n])
			c.wrOff += uint64(n)
			c.mu.Unlock()
		}
	}()
	for n < len(b) || len(b) == 0 {
		if err := c.base.CheckWrite(); err != nil {
			return n, err
		}
		c.mu.Lock()
		switch {
		case c.err != nil:
			err := c.err
			c.mu.Unlock()
			return n, err
		case c.finQueued || c.sndBuf == nil || !(c.state.canSend() || c.state == SynSent || c.state == SynReceived):
			c.mu.Unlock()
			return n, ErrPipe
		}
		if len(b) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		k := c.sndBuf.Write(b[n:])
		if k < len(b)-n && c.growSendBuffer(len(b)-n-k) {
			k += c.sndBuf.Write(b[n+k:])
		}
		n += k
		if k > 0 {
			c.schedule()
		}
		c.mu.Unlock()
		if n < len(b) {
			if err := c.base.WaitWritable(c.base.Writable.C()); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// growSendBuffer enlarges the send ring towards SendBuffer for want more
// bytes, within the memory cap.
func (c *Conn) growSendBuffer(want int) bool {
	cur := c.sndBuf.Cap()
	if cur >= c.sndCap {
		return false
	}
	next := min(c.sndCap, max(2*cur, cur+want, 4096))
	if !c.p.reserve(next - cur) {
		return false
	}
	c.sndBuf.Grow(next)
	return true
}

// CloseWrite closes the sending side: a FIN follows the queued data
// (RFC 9293 3.10.4); reading goes on.
func (c *Conn) CloseWrite() error {
	call := c.p.rec.Now()
	if c.base.IsClosed() {
		return ErrNotConn
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p.rec.AppCloseCall(c.id, call, true)
	if c.state == Closed {
		return ErrNotConn
	}
	c.closeRequested = true
	c.schedule()
	return nil
}

// Close closes the connection: blocked calls return net.ErrClosed; a FIN
// follows the queued data, or a RST when received data was left unread
// (RFC 9293 3.10.4; RFC 2525 2.17, as Linux).
func (c *Conn) Close() error {
	call := c.p.rec.Now()
	if !c.base.MarkClosed() {
		return ErrNotConnClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p.rec.AppCloseCall(c.id, call, false)
	c.appClosed = true
	if c.gone {
		if c.rcvBuf != nil {
			c.p.release(c.rcvBuf.Cap())
			c.rcvBuf = nil
		}
		return nil
	}
	if c.rcvBuf != nil && c.rcvBuf.Len() > 0 {
		c.abortRequested = true
	} else {
		c.closeRequested = true
	}
	c.schedule()
	return nil
}

// ErrNotConnClosed is returned by a second Close.
var ErrNotConnClosed = fmt.Errorf("close of a closed connection: %w", syscall.EBADF)

// SetNoDelay turns Nagle's algorithm off (true) or on (RFC 9293 3.7.4).
func (c *Conn) SetNoDelay(on bool) {
	c.mu.Lock()
	c.nodelay = on
	c.mu.Unlock()
}

// SetKeepAlive turns keepalive probes on or off (RFC 1122 4.2.3.6).
func (c *Conn) SetKeepAlive(on bool) {
	c.mu.Lock()
	c.keepAlive = on
	c.keepAliveChanged = true
	c.schedule()
	c.mu.Unlock()
}

// SetDeadline, SetReadDeadline and SetWriteDeadline have net.Conn's
// semantics.
func (c *Conn) SetDeadline(t time.Time) error      { return c.base.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.base.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.base.SetWriteDeadline(t) }

// WriteSome copies as much of b as the send buffer takes without waiting
// and returns the count (0 with a nil error when it is full): for event
// loops and deterministic simulations that must not block.
func (c *Conn) WriteSome(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	call := c.p.rec.Now()
	if err := c.base.CheckWrite(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return 0, c.err
	case c.finQueued || c.sndBuf == nil || !(c.state.canSend() || c.state == SynSent || c.state == SynReceived):
		return 0, ErrPipe
	}
	k := c.sndBuf.Write(b)
	if k < len(b) && c.growSendBuffer(len(b)-k) {
		k += c.sndBuf.Write(b[k:])
	}
	if k > 0 {
		c.p.rec.AppWrite(c.id, call, c.wrOff, b[:k])
		c.wrOff += uint64(k)
		c.schedule()
	}
	return k, nil
}

// ReadSome returns buffered received bytes without waiting: (0, nil) when
// none are there yet, io.EOF after the peer's FIN.
func (c *Conn) ReadSome(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	call := c.p.rec.Now()
	if err := c.base.CheckRead(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rcvBuf != nil && c.rcvBuf.Len() > 0 && len(b) > 0 {
		n := c.rcvBuf.Read(b)
		c.p.rec.AppRead(c.id, call, c.rdOff, b[:n], false)
		c.rdOff += uint64(n)
		c.afterRead(n)
		return n, nil
	}
	switch {
	case c.finRcvd:
		c.p.rec.AppRead(c.id, call, c.rdOff, nil, true)
		return 0, io.EOF
	case c.err != nil:
		return 0, c.err
	}
	return 0, nil
}

// autotune grows the receive buffer when the application reads more than
// half of it per round trip, so the window does not limit a fast transfer
// (Linux's receive-buffer auto-tuning, "dynamic right-sizing": the buffer
// becomes twice what is read per RTT), up to RecvBufferMax and within the
// stack's memory cap. c.mu is held.
func (c *Conn) autotune(n int) {
	c.rcvTuneBytes += n
	rtt := c.rcvRTT
	if rtt <= 0 {
		rtt = c.rtt.SRTT()
	}
	if rtt <= 0 {
		return
	}
	now := c.p.st.Clock().Now()
	if c.rcvTuneTime.IsZero() {
		c.rcvTuneTime = now
		return
	}
	if now.Sub(c.rcvTuneTime) < rtt {
		return
	}
	want := min(2*c.rcvTuneBytes, c.p.cfg.RecvBufferMax)
	c.rcvTuneTime, c.rcvTuneBytes = now, 0
	if want <= c.rcvCap {
		return
	}
	// The window grows now; the storage follows as data arrives
	// (growRecv), within the memory cap.
	c.rcvCap = want
	c.windowUpdate = true
	c.schedule()
}
