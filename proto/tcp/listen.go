package tcp

import (
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/demux"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/socket"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp/isn"
	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// Listener is a passive open (RFC 9293 3.10.1, LISTEN): it answers SYNs,
// keeps half-open connections up to its backlog (then answers with SYN
// cookies, RFC 4987 3.6), and queues completed connections for Accept, at
// most backlog of them.
type Listener struct {
	p       *Protocol
	key     demux.Key
	local   netip.AddrPort
	backlog int
	base    socket.Base

	mu      sync.Mutex
	synQ    int // connections in SYN-RECEIVED
	accepts chan *Conn
	closed  bool
}

func (*Listener) isEndpoint() {}

// Listen opens a listener on laddr (zero address: every local address; port
// 0: an ephemeral port) with the given backlog (<= 0: 128).
func (p *Protocol) Listen(laddr netip.AddrPort, backlog int) (*Listener, error) {
	if laddr.Addr().IsValid() && !laddr.Addr().IsUnspecified() && !p.st.IsLocal(laddr.Addr()) {
		return nil, fmt.Errorf("tcp: listen %v: %w", laddr, stack.ErrNoAddress)
	}
	if backlog <= 0 {
		backlog = 128
	}
	l := &Listener{p: p, backlog: backlog, accepts: make(chan *Conn, backlog)}
	l.base.Init(p.st.Clock())
	k, err := p.table.Bind(demux.Key{Proto: Proto, LocalAddr: laddr.Addr(), LocalPort: laddr.Port()}, l)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen %v: %w", laddr, err)
	}
	l.key = k
	a := k.LocalAddr
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	l.local = netip.AddrPortFrom(a, k.LocalPort)
	p.allMu.Lock()
	p.lns[l] = struct{}{}
	p.allMu.Unlock()
	return l, nil
}

// Addr returns the listening endpoint.
func (l *Listener) Addr() netip.AddrPort { return l.local }

// Accept waits for a connection that completed its handshake, within the
// listener's deadline (SetDeadline), until Close.
func (l *Listener) Accept() (*Conn, error) {
	for {
		select {
		case c := <-l.accepts:
			return c, nil
		default:
		}
		if err := l.base.CheckRead(); err != nil {
			return nil, err
		}
		select {
		case c := <-l.accepts:
			return c, nil
		case <-l.base.ReadDeadline.Done():
			return nil, socket.ErrDeadlineExceeded
		case <-l.base.Closed():
			return nil, socket.ErrClosed
		}
	}
}

// TryAccept returns a connection that completed its handshake, or nil at
// once when none is queued: Accept for event loops and deterministic
// simulations that must not block.
func (l *Listener) TryAccept() *Conn {
	select {
	case c := <-l.accepts:
		return c
	default:
		return nil
	}
}

// SetDeadline sets the deadline of Accept.
func (l *Listener) SetDeadline(t time.Time) error { return l.base.SetReadDeadline(t) }

// Close stops listening; connections not yet accepted are reset.
func (l *Listener) Close() error {
	if !l.base.MarkClosed() {
		return fmt.Errorf("tcp: close of a closed listener: %w", syscall.EBADF)
	}
	l.p.table.Remove(l.key, l)
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.p.allMu.Lock()
	delete(l.p.lns, l)
	l.p.allMu.Unlock()
	for {
		select {
		case c := <-l.accepts:
			c.base.MarkClosed()
			c.mu.Lock()
			c.abortRequested = true
			c.schedule()
			c.mu.Unlock()
		default:
			return nil
		}
	}
}

// Info describes the listener as ss -lt does: RecvQ is the accept queue,
// SendQ the backlog.
func (l *Listener) Info() Info {
	return Info{Local: l.local, State: Listen, RecvQ: len(l.accepts), SendQ: l.backlog, WScale: [2]int{-1, -1}}
}

// canAccept reports whether the accept queue has room.
func (l *Listener) canAccept() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && len(l.accepts) < cap(l.accepts)
}

// established queues a connection whose handshake completed (c.mu held).
func (l *Listener) established(c *Conn) {
	l.mu.Lock()
	l.synQ--
	closed := l.closed
	l.mu.Unlock()
	if closed {
		c.abortRequested = true
		c.schedule()
		return
	}
	select {
	case l.accepts <- c:
	default:
		l.p.c.inc(ListenOverflows)
		c.abortRequested = true
		c.schedule()
	}
}

// handshakeFailed forgets a half-open connection.
func (l *Listener) handshakeFailed(c *Conn) {
	l.mu.Lock()
	l.synQ--
	l.mu.Unlock()
}

// synOrCookie handles a segment for the listener (RFC 9293 3.10.7.2,
// LISTEN), on the loop that received it.
func (l *Listener) synOrCookie(lp *stack.Loop, remote, local netip.AddrPort, seg header.TCP) {
	p := l.p
	flags := seg.Flags()
	now := lp.Now()
	ls := p.loopState(lp)
	switch {
	case flags.Has(flagRST):
		return // first: an RST to a listener is ignored
	case flags.Has(flagACK) && !flags.Has(flagSYN):
		// Second: an ACK. It may complete a SYN cookie handshake.
		if p.cfg.SynCookies != SynCookiesNever && l.cookieAck(lp, ls, remote, local, seg) {
			return
		}
		p.sendStatelessReset(lp, ls, remote, local, seg)
		return
	case !flags.Has(flagSYN) || flags.Has(flagACK):
		if flags.Has(flagACK) {
			p.sendStatelessReset(lp, ls, remote, local, seg)
		}
		return
	}
	// Third: a SYN.
	var opt header.TCPOptions
	if err := header.ParseTCPOptions(seg, &opt); err != nil {
		p.c.inc(InErrs)
		return
	}
	l.mu.Lock()
	full := len(l.accepts) >= cap(l.accepts)
	useCookie := p.cfg.SynCookies == SynCookiesAlways || (p.cfg.SynCookies == SynCookiesWhenFull && l.synQ >= l.backlog)
	if !useCookie && !full && l.synQ >= l.backlog {
		full = true // SYN queue full and cookies off
	}
	if !full && !useCookie {
		l.synQ++
	}
	l.mu.Unlock()
	if full {
		p.c.inc(ListenOverflows)
		p.c.inc(ListenDrops)
		return
	}
	if useCookie {
		l.sendCookieSynAck(lp, ls, remote, local, seg, &opt)
		return
	}
	c, err := p.newConn(ls, local, remote)
	if err != nil {
		l.handshakeFailed(nil)
		p.c.inc(ListenDrops)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := p.table.Insert(c.key, c); err != nil {
		c.mu.Unlock()
		c.abandon()
		c.mu.Lock()
		l.handshakeFailed(nil)
		return
	}
	c.inTable = true
	c.ln = l
	c.initSend(now, lp.PathMTU(c.rip))
	c.irs = seqnum.Value(seg.Seq())
	c.rcvNxt = c.irs.Add(1)
	c.sndWnd = uint32(seg.Window())
	c.maxSndWnd = c.sndWnd
	c.sndWl1 = c.irs
	c.applySynOptions(&opt)
	if c.tsOK {
		c.tsRecent, c.tsRecentAge = opt.TSVal, now
	}
	p.rec.TCPOpen(c.id, c.local, c.remote, uint8(SynReceived), false)
	if p.rec != nil {
		f := header.TCPFields{Seq: seg.Seq(), Ack: seg.Ack(), Flags: flags}
		c.recordSeg(false, &f, len(seg.Payload()), &opt, uint32(seg.Window()), 0)
	}
	c.setState(SynReceived)
	p.c.inc(PassiveOpens)
	c.output(now)
}

// cookieMSS returns the MSS a SYN cookie's index stands for (RFC 4987 3.6).
func cookieMSS(i int) int { return int(isn.MSSTable[i]) }

// sendCookieSynAck answers a SYN statelessly with a cookie ISS.
func (l *Listener) sendCookieSynAck(lp *stack.Loop, ls *loopState, remote, local netip.AddrPort, seg header.TCP, opt *header.TCPOptions) {
	p := l.p
	now := lp.Now()
	mss := 536
	if opt.HasMSS {
		mss = int(opt.MSS)
	}
	idx := isn.MSSIndex(mss)
	iss := p.cookies.Make(local, remote, seg.Seq(), idx, now)
	o := &ls.out
	o.src = nil
	o.payload = 0
	o.f = header.TCPFields{SrcPort: local.Port(), DstPort: remote.Port(), Seq: iss, Ack: seg.Seq() + 1,
		Flags: flagSYN | flagACK, Window: uint16(min(p.cfg.RecvBuffer, 0xffff))}
	n := header.PutTCPOptionMSS(o.opts[:], uint16(lp.PathMTU(remote.Addr().As4())-header.IPv4MinHeaderLen-header.TCPMinHeaderLen))
	if opt.HasTimestamps && !p.cfg.DisableTimestamps {
		// The peer's window scale and SACK-permitted ride in the low bits
		// of our TSval, which its ACK echoes (RFC 4987 3.6 on the options
		// a cookie loses; Linux's encoding). Ours are the deterministic
		// defaults, so they need no room.
		ws := uint8(isn.NoWScale)
		if opt.HasWindowScale && !p.cfg.DisableWindowScaling {
			ws = opt.WindowScale
		}
		sackOK := opt.SACKPermitted && !p.cfg.DisableSACK
		tsval := isn.CookieTSval(p.tsNow(now), isn.EncodeTSOpts(ws, sackOK))
		if sackOK {
			n += header.PutTCPOptionSACKPermitted(o.opts[n:])
		} else {
			n += header.PutTCPOptionNOP(o.opts[n:])
			n += header.PutTCPOptionNOP(o.opts[n:])
		}
		n += header.PutTCPOptionTimestamps(o.opts[n:], tsval, opt.TSVal)
		if ws != isn.NoWScale {
			n += header.PutTCPOptionNOP(o.opts[n:])
			n += header.PutTCPOptionWindowScale(o.opts[n:], windowShift(p.cfg.RecvBufferMax))
		}
	}
	o.f.Options = o.opts[:n]
	if lp.OutputBuilt(local.Addr().As4(), remote.Addr().As4(), Proto, 0, header.DefaultTTL, true, o.f.HeaderLen(), o) {
		p.c.inc(SyncookiesSent)
		p.c.inc(OutSegs)
	}
}

// cookieAck completes a handshake from a valid SYN cookie (RFC 4987 3.6):
// the connection is made ESTABLISHED at once. It reports whether the ACK
// carried a valid cookie.
func (l *Listener) cookieAck(lp *stack.Loop, ls *loopState, remote, local netip.AddrPort, seg header.TCP) bool {
	p := l.p
	now := lp.Now()
	idx, ok := p.cookies.Check(local, remote, seg.Seq()-1, seg.Ack()-1, now)
	if !ok {
		p.c.inc(SyncookiesFailed)
		return false
	}
	if !l.canAccept() {
		p.c.inc(ListenOverflows)
		p.c.inc(ListenDrops)
		return true // dropped, as Linux does; the peer retransmits
	}
	var opt header.TCPOptions
	if err := header.ParseTCPOptions(seg, &opt); err != nil {
		return false
	}
	c, err := p.newConn(ls, local, remote)
	if err != nil {
		p.c.inc(ListenDrops)
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := p.table.Insert(c.key, c); err != nil {
		c.mu.Unlock()
		c.abandon()
		c.mu.Lock()
		return true
	}
	c.inTable = true
	c.initSend(now, lp.PathMTU(c.rip))
	c.iss = seqnum.Value(seg.Ack() - 1)
	c.sndUna, c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1), c.iss.Add(1)
	c.irs = seqnum.Value(seg.Seq() - 1)
	c.rcvNxt = seqnum.Value(seg.Seq())
	syn := header.TCPOptions{HasMSS: true, MSS: uint16(cookieMSS(idx))}
	if opt.HasTimestamps {
		ws, wsOK, sackOK := isn.DecodeTSOpts(opt.TSEcr)
		syn.HasTimestamps, syn.TSVal = true, opt.TSVal
		syn.SACKPermitted = sackOK
		// Our shift is windowShift(RecvBufferMax), as in the SYN-ACK.
		syn.HasWindowScale, syn.WindowScale = wsOK, ws
		c.tsOffset = 0 // the cookie's TSval carried no offset
	} else {
		c.tsOK, c.sackOK, c.wsOK = false, false, false
	}
	c.applySynOptions(&syn)
	if c.tsOK {
		c.tsRecent, c.tsRecentAge = opt.TSVal, now
	}
	c.sndWnd = uint32(seg.Window()) << c.sndShift
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = seqnum.Value(seg.Seq()), seqnum.Value(seg.Ack())
	c.rcvAdv = c.rcvNxt.Add(seqnum.Size(min(p.cfg.RecvBuffer, 0xffff)))
	p.rec.TCPOpen(c.id, c.local, c.remote, uint8(SynReceived), false)
	c.setState(SynReceived)
	p.c.inc(PassiveOpens)
	p.c.inc(SyncookiesRecv)
	l.mu.Lock()
	l.synQ++ // established() takes it back
	l.mu.Unlock()
	c.ln = l
	c.establish(now)
	if len(seg.Payload()) > 0 || seg.Flags().Has(flagFIN) {
		c.segmentArrives(now, seg)
	}
	return true
}

// noConnection answers a segment for which no connection or listener
// exists (RFC 9293 3.10.7.1, CLOSED): a reset unless it is one.
func (p *Protocol) noConnection(lp *stack.Loop, remote, local netip.AddrPort, seg header.TCP) {
	if seg.Flags().Has(flagRST) {
		return
	}
	p.sendStatelessReset(lp, p.loopState(lp), remote, local, seg)
}

// sendStatelessReset sends the RST RFC 9293 3.10.7.1 prescribes: with an
// ACK, <SEQ=SEG.ACK><CTL=RST>; without, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
// <CTL=RST,ACK>.
func (p *Protocol) sendStatelessReset(lp *stack.Loop, ls *loopState, remote, local netip.AddrPort, seg header.TCP) {
	o := &ls.out
	o.src = nil
	o.payload = 0
	o.f = header.TCPFields{SrcPort: local.Port(), DstPort: remote.Port()}
	if seg.Flags().Has(flagACK) {
		o.f.Seq = seg.Ack()
		o.f.Flags = flagRST
	} else {
		o.f.Ack = seg.Seq() + uint32(seg.SegmentLen())
		o.f.Flags = flagRST | flagACK
	}
	if lp.OutputBuilt(local.Addr().As4(), remote.Addr().As4(), Proto, 0, header.DefaultTTL, true, header.TCPMinHeaderLen, o) {
		p.c.inc(OutRsts)
		p.c.inc(OutSegs)
	}
}
