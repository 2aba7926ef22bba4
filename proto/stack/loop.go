package stack

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/arp"
	"github.com/verinic/verinic/proto/checksum"
	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/reassembly"
	"github.com/verinic/verinic/proto/socket"
	"github.com/verinic/verinic/proto/timer"
	"github.com/verinic/verinic/proto/udp"
)

// ethIPHeaders is the room a frame needs before its IP payload.
const ethIPHeaders = header.EthernetHeaderLen + header.IPv4MinHeaderLen

// icmpQuoteMax is how much of an offending datagram an ICMP error quotes:
// as much as fits in 576 bytes (RFC 1812 4.3.2.3; Linux does the same).
const icmpQuoteMax = 576 - header.IPv4MinHeaderLen - header.ICMPv4HeaderLen

// pendingPkt is a frame waiting for its next hop's MAC.
type pendingPkt struct {
	pkt     dma.Packet
	nextHop header.IPv4Addr
	since   time.Time
}

// Loop is the poll loop of one (interface, queue). Its exported methods are
// for transport protocols registered with RegisterTransport, and may be called
// only from the loop itself (from a transport handler or a timer it runs).
type Loop struct {
	s    *Stack
	nic  *NIC
	q    int
	pool *dma.Mempool

	rx []dma.Packet
	tx []dma.Packet

	timers       timer.Queue
	housekeeping timer.Timer
	reasm        *reassembly.Reassembler

	handoff      *socket.DatagramQueue // datagrams from application goroutines
	handoffSpace socket.Notifier       // signalled when the loop frees hand-off space
	wakeC        chan struct{}
	notified     bool // the link wakes the loop for every frame (link.RxNotifier)

	pending    []pendingPkt
	pendingGen uint64
	arpReqs    []arp.Request

	// rxMeta is the offload metadata of the frame being processed, when
	// the link's device checks checksums (link.Offloader with
	// dma.OffloadRxChecksum; rxOffload); zero otherwise.
	rxMeta      dma.Meta
	rxOffload   bool
	txL4Offload bool // the link inserts TCP/UDP checksums (dma.OffloadTxL4Csum)
	// tsoPool holds the large buffers of TSO bursts (nil: no TSO);
	// tsoDst and tsoHop are the destination TSOMax last looked up and
	// its next hop, for OutputTSO.
	tsoPool        *dma.Mempool
	tsoDst, tsoHop header.IPv4Addr

	now       time.Time
	scratch   []byte // datagrams built aside by OutputBuilt
	replyOpts [header.IPv4MaxHeaderLen - header.IPv4MinHeaderLen]byte
	c         counterSet
}

func newLoop(s *Stack, n *NIC, q int, pool *dma.Mempool) *Loop {
	lp := &Loop{
		s: s, nic: n, q: q, pool: pool,
		rx:      make([]dma.Packet, s.cfg.Batch),
		tx:      make([]dma.Packet, 0, 8*s.cfg.Batch),
		handoff: socket.NewDatagramQueue(s.cfg.HandoffBytes, s.cfg.HandoffBytes/64),
		wakeC:   make(chan struct{}, 1),
		pending: make([]pendingPkt, 0, s.cfg.PendingPackets),
		arpReqs: make([]arp.Request, 0, 64),
	}
	lp.handoffSpace.Init()
	if o, ok := n.link.(link.Offloader); ok {
		lp.rxOffload = o.Offloads().Has(dma.OffloadRxChecksum)
		lp.txL4Offload = o.Offloads().Has(dma.OffloadTxL4Csum) && !s.cfg.NoTxChecksumOffload
		if a, ok := n.link.(link.Allocator); ok && lp.txL4Offload && !s.cfg.NoTSO && o.Offloads().Has(dma.OffloadTSO|dma.OffloadTxIPCsum) {
			lp.tsoPool = newTSOPool(s, n, q, a.Allocator())
		}
	}
	rcfg := s.cfg.Reassembly
	rcfg.TimeExceeded = lp.reassemblyTimeExceeded
	lp.reasm = reassembly.New(rcfg, &lp.timers)
	lp.housekeeping.Init(lp.housekeep)
	lp.now = s.clock.Now()
	lp.timers.Schedule(&lp.housekeeping, lp.now.Add(s.cfg.Housekeeping))
	return lp
}

func (lp *Loop) wake() {
	select {
	case lp.wakeC <- struct{}{}:
	default:
	}
}

// run polls until stop is closed, sleeping briefly when idle.
func (lp *Loop) run(stop <-chan struct{}) {
	idle := 0
	sleep := lp.s.cfg.IdleSleep
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if lp.poll() > 0 {
			idle = 0
			continue
		}
		idle++
		if sleep < 0 || idle < 64 {
			runtime.Gosched()
			continue
		}
		t.Reset(lp.idleSleep(sleep))
		select {
		case <-stop:
			t.Stop()
			return
		case <-lp.wakeC:
			t.Stop()
		case <-t.C:
		}
	}
}

// idleSleep is how long an idle loop may block: until its next timer when
// the link wakes it for every frame (an interrupt, the in-memory wire) and
// it has nothing waiting for transmit ring space, otherwise sleep (the
// loop then polls the ring again).
func (lp *Loop) idleSleep(sleep time.Duration) time.Duration {
	if !lp.notified || len(lp.tx) > 0 || lp.s.clock != clock.Real {
		// A fake clock's timers fall due when a test advances it, which
		// wakes nobody: keep polling.
		return sleep
	}
	next, ok := lp.timers.Next()
	if !ok {
		return lp.s.cfg.Housekeeping
	}
	return max(next.Sub(lp.s.clock.Now()), sleep)
}

// release frees frames the loop still holds (after its goroutine ended).
func (lp *Loop) release() {
	for _, p := range lp.pending {
		p.pkt.Free()
	}
	lp.pending = lp.pending[:0]
	for _, p := range lp.tx {
		p.Free()
	}
	lp.tx = lp.tx[:0]
	lp.releaseTSO()
}

// poll runs one iteration and returns the work done.
func (lp *Loop) poll() int {
	lp.now = lp.s.clock.Now()
	work := lp.timers.Run(lp.now)
	if lp.q == 0 {
		select {
		case a := <-lp.nic.announce:
			lp.sendARP(header.ARPRequest, header.BroadcastMAC, header.MAC{}, a, a)
			work++
		default:
		}
	}
	n, err := lp.nic.link.RxBatch(lp.q, lp.rx)
	if err != nil {
		lp.c.inc(RxErrors)
	}
	for i := 0; i < n; i++ {
		p := lp.rx[i]
		lp.c.inc(RxFrames)
		lp.c.add(RxBytes, uint64(p.Len))
		if p.Meta&dma.RxVLAN != 0 {
			// The device stripped an 802.1Q tag: the stack has no VLAN
			// interfaces, so this is dropped as a tagged frame is.
			lp.c.inc(EthVLAN)
			p.Free()
			continue
		}
		if lp.rxOffload {
			lp.rxMeta = p.Meta
		}
		lp.input(p.Data())
		p.Free()
	}
	lp.rxMeta = 0
	work += n
	drained := 0
	for drained < 4*lp.s.cfg.Batch {
		data, m, ok := lp.handoff.Peek()
		if !ok {
			break
		}
		lp.outputFlags(m.Local.Addr().As4(), m.Remote.Addr().As4(), m.Proto, m.TOS, m.TTL, m.Flags&socket.FlagDontFragment != 0, data, nil)
		lp.handoff.Discard()
		drained++
	}
	if drained > 0 {
		lp.handoffSpace.Notify()
		work += drained
	}
	for _, h := range lp.s.pollHooks {
		work += h(lp)
	}
	if len(lp.pending) > 0 && lp.nic.arp.Generation() != lp.pendingGen {
		lp.flushPending()
	}
	lp.flushTx()
	return work
}

// housekeep runs every Housekeeping period: ARP timers (queue 0 of each
// interface) and aging of packets waiting for resolution.
func (lp *Loop) housekeep(now time.Time) {
	if lp.q == 0 {
		lp.arpReqs = lp.nic.arp.Tick(now, lp.arpReqs[:0])
		for _, r := range lp.arpReqs {
			lp.sendARPRequest(r)
		}
	}
	if len(lp.pending) > 0 {
		lp.flushPending()
	}
	lp.timers.Schedule(&lp.housekeeping, now.Add(lp.s.cfg.Housekeeping))
}

// input processes one received frame. The frame's buffer is freed by the
// caller afterwards: everything kept is copied.
func (lp *Loop) input(frame []byte) {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		lp.c.inc(EthTruncated)
		return
	}
	dst := eth.Dst()
	if dst != lp.nic.mac && !dst.IsBroadcast() {
		lp.c.inc(EthOtherHost)
		return
	}
	if eth.HeaderLen() != header.EthernetHeaderLen {
		lp.c.inc(EthVLAN)
		return
	}
	switch eth.EtherType() {
	case header.EtherTypeARP:
		lp.arpInput(eth.Payload())
	case header.EtherTypeIPv4:
		lp.ipInput(eth.Payload())
	default:
		lp.c.inc(EthUnknownType)
	}
}

// arpInput handles an ARP packet (RFC 826 "Packet Reception").
func (lp *Loop) arpInput(b []byte) {
	a, err := header.ParseARP(b)
	if err != nil {
		lp.c.inc(ARPMalformed)
		return
	}
	op, sip, sha, tip := a.Op(), a.SenderIP(), a.SenderMAC(), a.TargetIP()
	switch op {
	case header.ARPRequest:
		lp.c.inc(ARPRequestsIn)
	case header.ARPReply:
		lp.c.inc(ARPRepliesIn)
	default:
		lp.c.inc(ARPMalformed)
		return
	}
	if lp.nic.hasAddr(sip) {
		if sha != lp.nic.mac {
			lp.c.inc(ARPConflicts) // another host claims our address
		}
		return
	}
	if lp.arpMartian(op, sip, tip) {
		lp.c.inc(ARPMartian)
		return
	}
	targetIsUs := lp.nic.hasAddr(tip)
	if old, changed := lp.nic.arp.Learn(sip, sha, op == header.ARPReply, targetIsUs && op == header.ARPRequest, lp.now); changed {
		lp.nic.logMACChange(sip, old, sha, lp.now)
	}
	if op == header.ARPRequest && targetIsUs && !sip.IsUnspecified() {
		lp.sendARP(header.ARPReply, sha, sha, sip, tip)
	} else if op == header.ARPRequest && targetIsUs {
		// RFC 5227 probe (sender 0.0.0.0): answer by broadcast so the
		// prober sees the address is taken.
		lp.sendARP(header.ARPReply, header.BroadcastMAC, sha, sip, tip)
	}
}

// arpMartian reports whether an ARP packet names a sender or target that
// no neighbour on this link can have, as Linux's arp_process refuses them
// (multicast or loopback targets; senders that fail ip_route_input's source
// checks): a sender that is multicast, loopback, in 0/8, a broadcast
// address, or outside every subnet of the interface (a neighbour is
// on-link; RFC 1122 3.3.1.1), or 0.0.0.0 in anything but a request (an RFC
// 5227 2.1.1 probe). Such packets are neither learnt nor answered.
func (lp *Loop) arpMartian(op uint16, sip, tip header.IPv4Addr) bool {
	if tip.IsMulticast() || tip.IsLoopback() {
		return true
	}
	if sip.IsUnspecified() {
		return op != header.ARPRequest
	}
	if sip.IsMulticast() || sip.IsLoopback() || sip[0] == 0 || lp.nic.isBroadcast(sip) {
		return true
	}
	return !lp.nic.onLink(sip)
}

// sendARP builds and queues an ARP packet from this interface.
func (lp *Loop) sendARP(op uint16, ethDst, tha header.MAC, tpa, spa header.IPv4Addr) {
	p, err := lp.pool.Alloc()
	if err != nil {
		lp.c.inc(TxNoBuffers)
		return
	}
	room := p.Room()
	n := header.EncodeEthernet(room, ethDst, lp.nic.mac, header.EtherTypeARP)
	n += header.EncodeARP(room[n:], op, lp.nic.mac, spa, tha, tpa)
	p.Len = uint16(padFrame(room, n))
	if !lp.queueTx(p) {
		return
	}
	if op == header.ARPRequest {
		lp.c.inc(ARPRequestsOut)
	} else {
		lp.c.inc(ARPRepliesOut)
	}
}

func (lp *Loop) sendARPRequest(r arp.Request) {
	src, ok := lp.nic.sourceFor(netip.AddrFrom4(r.Target))
	if !ok {
		return
	}
	dst := header.BroadcastMAC
	if r.Unicast {
		dst = r.MAC
	}
	lp.sendARP(header.ARPRequest, dst, header.MAC{}, r.Target, src.As4())
}

// padFrame zero-pads a frame of n bytes to the Ethernet minimum.
func padFrame(room []byte, n int) int {
	if n < header.EthernetMinFrameLen {
		clear(room[n:header.EthernetMinFrameLen])
		return header.EthernetMinFrameLen
	}
	return n
}

func fixIPChecksum(ip []byte) { header.IPv4(ip).SetChecksum() }

// martianSource reports whether src cannot be the source of a datagram
// arriving from the wire (RFC 1122 3.2.1.3, RFC 1812 5.3.7; Linux's
// ip_route_input_slow, martian_source): one of our own addresses, loopback
// 127/8, 0/8, the limited broadcast, a directed broadcast of the
// interface's subnets, or multicast. As Linux does, 0.0.0.0 is accepted
// towards the limited broadcast only (a host learning its address, RFC
// 1122 3.2.1.3 (a); DHCP).
func (lp *Loop) martianSource(src, dst header.IPv4Addr) bool {
	switch {
	case src.IsUnspecified():
		return !dst.IsBroadcast()
	case src[0] == 0, src.IsLoopback(), src.IsMulticast(), src.IsBroadcast():
		return true
	}
	return lp.nic.isBroadcast(src) || lp.s.isLocal4(src)
}

// ipInput handles an IPv4 packet (RFC 791, RFC 1122 3.2.1).
func (lp *Loop) ipInput(b []byte) {
	var ip header.IPv4
	var err error
	switch lp.rxMeta & (dma.RxIPChecked | dma.RxIPBad) {
	case dma.RxIPChecked:
		// The device verified the header checksum (82599 IPCS without
		// IPE, datasheet 7.1.11): parse without summing it again.
		ip, err = header.ParseIPv4Verified(b)
	case dma.RxIPChecked | dma.RxIPBad:
		lp.c.inc(IPBadChecksum)
		return
	default:
		ip, err = header.ParseIPv4(b)
	}
	badOptions := false
	if err != nil {
		switch {
		case errors.Is(err, header.ErrChecksum):
			lp.c.inc(IPBadChecksum)
			return
		case errors.Is(err, header.ErrIPv4Options):
			// Lengths and checksum are good (checked first): answer it
			// below, once it is known to be from a fit source and for us.
			ip, badOptions = header.IPv4(b[:binary.BigEndian.Uint16(b[2:4])]), true
		default:
			lp.c.inc(IPMalformed)
			return
		}
	}
	src, dst := ip.Src(), ip.Dst()
	if lp.martianSource(src, dst) {
		lp.c.inc(IPMartian)
		return
	}
	bcast := lp.nic.isBroadcast(dst)
	if !bcast && !lp.s.isLocal4(dst) {
		lp.c.inc(IPNotForUs)
		return
	}
	if badOptions || ip.HeaderLen() > header.IPv4MinHeaderLen {
		if ptr := optionProblem(ip); ptr != 0 {
			// RFC 1122 3.2.2.5 (SHOULD), as Linux's ip_rcv_options.
			lp.c.inc(IPMalformed)
			lp.c.inc(IPBadOptions)
			if !bcast {
				lp.sendICMPError(ip, header.ICMPv4ParameterProblem, 0, uint32(ptr)<<24)
			}
			return
		}
	}
	if ip.IsFragment() {
		lp.c.inc(IPFragments)
		k := reassembly.Key{Src: src, Dst: dst, ID: ip.ID(), Proto: ip.Protocol()}
		out, whole := lp.reasm.Add(k, ip[:ip.HeaderLen()], ip.FragmentOffset(), ip.MoreFragments(), ip.Payload(), lp.now, fixIPChecksum)
		switch out {
		case reassembly.Complete:
			lp.c.inc(IPReassembled)
			ip = header.IPv4(whole)
			lp.rxMeta &^= dma.RxL4Checked | dma.RxL4Bad // the device checks no fragment's L4
		case reassembly.Dropped:
			lp.c.inc(IPFragDropped)
			return
		default:
			return
		}
	}
	lp.c.inc(IPDelivered)
	switch ip.Protocol() {
	case header.IPProtocolICMP:
		lp.icmpInput(ip, bcast)
	case header.IPProtocolUDP:
		lp.udpInput(ip, bcast)
	default:
		if h := lp.s.transports[ip.Protocol()]; h != nil {
			h(lp, ip, bcast)
			return
		}
		lp.c.inc(IPUnknownProto)
		if !bcast {
			lp.sendICMPError(ip, header.ICMPv4DestinationUnreachable, header.ICMPv4ProtocolUnreachable, 0)
		}
	}
}

func (lp *Loop) udpInput(ip header.IPv4, bcast bool) {
	src, dst := ip.Src(), ip.Dst()
	var u header.UDP
	var err error
	switch lp.RxL4Checksum() {
	case L4ChecksumGood:
		u, err = header.ParseUDPVerified(ip.Payload())
	case L4ChecksumBad:
		err = header.ErrUDPChecksum
	default:
		u, err = header.ParseUDP(ip.Payload(), src, dst)
	}
	if err != nil {
		if errors.Is(err, header.ErrChecksum) {
			lp.c.inc(UDPBadChecksum)
		} else {
			lp.c.inc(UDPMalformed)
		}
		return
	}
	from := netip.AddrPortFrom(netip.AddrFrom4(src), u.SrcPort())
	to := netip.AddrPortFrom(netip.AddrFrom4(dst), u.DstPort())
	switch lp.s.udp.Deliver(from, to, ip.TTL(), ip.TOS(), u.Payload()) {
	case udp.Delivered:
		lp.c.inc(UDPDelivered)
	case udp.QueueFull:
		lp.c.inc(UDPRcvbufErrors)
	case udp.NoSocket:
		lp.c.inc(UDPNoPort)
		if !bcast {
			lp.sendICMPError(ip, header.ICMPv4DestinationUnreachable, header.ICMPv4PortUnreachable, 0)
		}
	}
}

func (lp *Loop) icmpInput(ip header.IPv4, bcast bool) {
	m, err := header.ParseICMPv4(ip.Payload())
	if err != nil {
		if errors.Is(err, header.ErrChecksum) {
			lp.c.inc(ICMPBadChecksum)
		} else {
			lp.c.inc(ICMPMalformed)
		}
		return
	}
	switch m.Type() {
	case header.ICMPv4Echo:
		lp.c.inc(ICMPEchoIn)
		if bcast {
			lp.c.inc(ICMPEchoBcast) // icmp_echo_ignore_broadcasts=1
			return
		}
		// Echo reply (RFC 792): same identifier, sequence and data;
		// the checksum is patched for the type change (RFC 1624).
		var hdr [header.ICMPv4HeaderLen]byte
		copy(hdr[:], m[:header.ICMPv4HeaderLen])
		hdr[0] = header.ICMPv4EchoReply
		binary.BigEndian.PutUint16(hdr[2:4], checksum.Update16(m.Checksum(), uint16(header.ICMPv4Echo)<<8|uint16(m.Code()), uint16(header.ICMPv4EchoReply)<<8|uint16(m.Code())))
		d := outDatagram{src: ip.Dst(), dst: ip.Src(), proto: header.IPProtocolICMP, tos: ip.TOS(), ttl: header.DefaultTTL, a: hdr[:], b: m.Payload()}
		if ip.HeaderLen() > header.IPv4MinHeaderLen {
			// Record Route and Timestamp come back, updated (RFC 1122
			// 3.2.2.6).
			d.opts = lp.replyOpts[:echoOptions(lp.replyOpts[:], ip, ip.Dst(), lp.now)]
		}
		if lp.send(&d) {
			lp.c.inc(ICMPEchoOut)
		}
	case header.ICMPv4Timestamp:
		lp.c.inc(ICMPTimestampIn)
		if bcast || len(m) < 20 {
			return // icmp_echo_ignore_broadcasts covers timestamps too
		}
		// Timestamp reply (RFC 792): identifier, sequence and originate
		// copied; receive and transmit timestamps now, in ms since
		// midnight UT (both: the reply leaves in the same poll).
		var r [20]byte
		copy(r[:12], m[:12])
		r[0], r[1] = header.ICMPv4TimestampReply, 0
		ts := msSinceMidnightUT(lp.now)
		binary.BigEndian.PutUint32(r[12:16], ts)
		binary.BigEndian.PutUint32(r[16:20], ts)
		r[2], r[3] = 0, 0
		binary.BigEndian.PutUint16(r[2:4], checksum.Checksum(r[:], 0))
		if lp.output(ip.Dst(), ip.Src(), header.IPProtocolICMP, ip.TOS(), header.DefaultTTL, r[:], nil) {
			lp.c.inc(ICMPTimestampOut)
		}
	case header.ICMPv4EchoReply:
		lp.c.inc(ICMPReplyIn)
		lp.s.icmp.DeliverReply(netip.AddrFrom4(ip.Src()), netip.AddrFrom4(ip.Dst()), ip.TTL(), m.Ident(), m.Seq(), m.Payload())
	case header.ICMPv4DestinationUnreachable:
		lp.c.inc(ICMPUnreachIn)
		lp.icmpErrorInput(m)
	default:
		lp.c.inc(ICMPOtherIn)
	}
}

// icmpErrorInput passes an ICMP error about a datagram we sent to the
// transport that sent it (RFC 1122 3.2.2.1, 4.1.3.3).
func (lp *Loop) icmpErrorInput(m header.ICMPv4) {
	q := m.Payload()
	if len(q) < header.IPv4MinHeaderLen || q[0]>>4 != 4 {
		return
	}
	hl := int(q[0]&0xf) * 4
	if hl < header.IPv4MinHeaderLen || len(q) < hl+8 {
		return
	}
	quoted := header.IPv4(q)
	fragNeeded := m.Type() == header.ICMPv4DestinationUnreachable && m.Code() == header.ICMPv4FragmentationNeeded && lp.s.isLocal4(quoted.Src())
	h := lp.s.errHandlers[quoted.Protocol()]
	if h != nil && quoted.FragmentOffset() == 0 {
		// The transport vouches for the quote first (TCP: a sequence
		// number in flight, RFC 5927 5.1); only then does a "fragmentation
		// needed" lower the path MTU, so a forged one cannot (RFC 5927 7.2).
		valid := h(lp, m.Type(), m.Code(), binary.BigEndian.Uint32(m[4:8]), quoted[:min(len(quoted), hl+header.TCPMinHeaderLen)])
		if fragNeeded && valid {
			lp.s.pmtu.update(quoted.Dst(), int(m.NextHopMTU()), lp.nic.mtu, lp.now)
		}
		return
	}
	if fragNeeded {
		lp.s.pmtu.update(quoted.Dst(), int(m.NextHopMTU()), lp.nic.mtu, lp.now)
	}
	if quoted.FragmentOffset() != 0 {
		return
	}
	if quoted.Protocol() != header.IPProtocolUDP {
		return
	}
	local := netip.AddrPortFrom(netip.AddrFrom4(quoted.Src()), binary.BigEndian.Uint16(q[hl:]))
	remote := netip.AddrPortFrom(netip.AddrFrom4(quoted.Dst()), binary.BigEndian.Uint16(q[hl+2:]))
	lp.s.udp.HandleError(local, remote, m.Type(), m.Code())
}

// sendICMPError answers the datagram orig with an ICMP error, unless RFC
// 1122 3.2.2 forbids it or the rate limiter refuses.
func (lp *Loop) sendICMPError(orig header.IPv4, typ, code uint8, rest uint32) {
	lp.icmpError(orig, orig[:min(len(orig), icmpQuoteMax)], typ, code, rest)
}

// icmpError sends an ICMP error about the datagram whose header (and first
// payload bytes) quote holds, as received: RFC 792 asks for the internet
// header and at least 64 bits of data, RFC 1812 4.3.2.3 for as much as fits
// in 576 bytes, unchanged. quote may be shorter than the datagram's total
// length (a fragment kept by reassembly); its header is quoted as it was.
func (lp *Loop) icmpError(orig header.IPv4, quote []byte, typ, code uint8, rest uint32) {
	src := orig.Src()
	if orig.FragmentOffset() != 0 || src.IsUnspecified() || src.IsBroadcast() || src.IsMulticast() || lp.nic.isBroadcast(src) {
		return
	}
	if orig.Protocol() == header.IPProtocolICMP {
		hl := orig.HeaderLen()
		if len(quote) <= hl || header.ICMPv4(quote[hl:hl+1:hl+1]).IsError() || quote[hl] > header.ICMPv4TimestampReply {
			return // never an error about an error (or an unknown type)
		}
	}
	if !lp.s.limiter.Allow(src, typ, code, lp.now) {
		return
	}
	var hdr [header.ICMPv4HeaderLen]byte
	hdr[0], hdr[1] = typ, code
	binary.BigEndian.PutUint32(hdr[4:8], rest)
	binary.BigEndian.PutUint16(hdr[2:4], checksum.Checksum(quote, checksum.Sum(hdr[:], 0)))
	if !lp.output(orig.Dst(), src, header.IPProtocolICMP, 0, header.DefaultTTL, hdr[:], quote) {
		return // counted by reason (ip_no_route, tx_no_buffers, arp_queue_full, ...)
	}
	switch typ {
	case header.ICMPv4DestinationUnreachable:
		lp.c.inc(ICMPUnreachOut)
	case header.ICMPv4TimeExceeded:
		lp.c.inc(ICMPTimeExceededOut)
	case header.ICMPv4ParameterProblem:
		lp.c.inc(ICMPParamProbOut)
	}
}

// reassemblyTimeExceeded sends ICMP Time Exceeded, code 1 (RFC 792), for a
// datagram that timed out in reassembly with its first fragment in. quote
// is that fragment's header as received and the start of its data; the
// header is quoted unchanged (its total length is the fragment's, longer
// than the quote), as Linux's ip_expire quotes the head fragment.
func (lp *Loop) reassemblyTimeExceeded(quote []byte) {
	if len(quote) < header.IPv4MinHeaderLen {
		return
	}
	ip := header.IPv4(quote)
	if ip.HeaderLen() < header.IPv4MinHeaderLen || ip.HeaderLen() > len(quote) {
		return
	}
	lp.icmpError(ip, quote[:min(len(quote), icmpQuoteMax)], header.ICMPv4TimeExceeded, header.ICMPv4ReassemblyExceeded, 0)
}

// output sends an IP datagram whose payload is a followed by b, from src to
// dst: it routes, fragments to the interface MTU (RFC 791 3.2,
// "fragmentation"), resolves the next hop and queues the frames. A datagram
// routed out of another interface is handed to that interface's loop. It
// reports whether the datagram went out: every frame queued for
// transmission or waiting for its next hop's MAC (as Linux counts an ICMP
// message sent once it passes routing). When it did not, the reason is
// counted (ip_no_route, tx_no_buffers, arp_queue_full, ...); a frame that
// waited for ARP in vain is counted later, in arp_failed.
func (lp *Loop) output(src, dst header.IPv4Addr, proto, tos, ttl uint8, a, b []byte) bool {
	return lp.outputFlags(src, dst, proto, tos, ttl, false, a, b)
}

// outputFlags is output with the DF bit: a datagram with df set that does
// not fit the path MTU is dropped and counted (sockets check before
// sending; the path MTU may have dropped since).
func (lp *Loop) outputFlags(src, dst header.IPv4Addr, proto, tos, ttl uint8, df bool, a, b []byte) bool {
	d := outDatagram{src: src, dst: dst, proto: proto, tos: tos, ttl: ttl, df: df, a: a, b: b}
	return lp.send(&d)
}

// send routes d, fragments it to the path MTU and sends its frames (see
// output); it fills in d's identification and next hop. Options go in the
// first fragment only: the ones this host sends (Record Route, Timestamp)
// are not copied into fragments (RFC 791 3.1, copied flag 0).
func (lp *Loop) send(d *outDatagram) bool {
	r, ok := lp.s.routes.Lookup(netip.AddrFrom4(d.dst))
	if !ok {
		lp.c.inc(IPNoRoute)
		return false
	}
	if r.NIC != lp.nic.id {
		return lp.handOver(r.NIC, d.src, d.dst, d.proto, d.tos, d.ttl, d.df, d.a, d.b)
	}
	d.nextHop = r.NextHop(netip.AddrFrom4(d.dst)).As4()
	d.id = lp.s.nextID()
	total := len(d.a) + len(d.b)
	hl := header.IPv4MinHeaderLen + (len(d.opts)+3)&^3
	if total+hl > header.IPv4MaxTotalLen {
		lp.c.inc(IPMalformed)
		return false
	}
	maxData := lp.s.pmtu.lookup(d.dst, lp.nic.mtu, lp.now) - hl
	if total <= maxData {
		return lp.frame(d, 0, total, false)
	}
	if d.df {
		lp.c.inc(IPFragNeeded)
		return false
	}
	chunk := maxData &^ 7 // fragment data is a multiple of 8 bytes
	for off := 0; off < total; off += chunk {
		n := min(chunk, total-off)
		if !lp.frame(d, off, n, off+n < total) {
			return false // the datagram cannot be reassembled without this fragment
		}
		lp.c.inc(IPFragmentsOut)
	}
	return true
}

// outDatagram is an IP datagram being sent: its header fields, its payload
// (a followed by b) and the next hop its frames go to.
type outDatagram struct {
	src, dst        header.IPv4Addr
	proto, tos, ttl uint8
	id              uint16
	df              bool   // Don't Fragment
	opts            []byte // IP options (first fragment only); at most 40 bytes
	a, b            []byte
	nextHop         header.IPv4Addr
}

// frame builds and sends one frame of d carrying payload bytes [off, off+n)
// at fragment offset off; more sets More Fragments (RFC 791 3.2).
func (lp *Loop) frame(d *outDatagram, off, n int, more bool) bool {
	p, err := lp.pool.Alloc()
	if err != nil {
		lp.c.inc(TxNoBuffers)
		return false
	}
	room := p.Room()
	var flags uint8
	if d.df {
		flags |= header.IPv4FlagDontFragment
	}
	if more {
		flags |= header.IPv4FlagMoreFragments
	}
	f := header.IPv4Fields{
		TOS: d.tos, ID: d.id, Flags: flags,
		FragOffset: uint16(off), TTL: d.ttl, Protocol: d.proto, Src: d.src, Dst: d.dst,
	}
	if off == 0 {
		f.Options = d.opts
	}
	hl := f.HeaderLen()
	f.TotalLen = uint16(hl + n)
	header.EncodeEthernet(room, header.MAC{}, lp.nic.mac, header.EtherTypeIPv4)
	header.EncodeIPv4(room[header.EthernetHeaderLen:], f)
	start := header.EthernetHeaderLen + hl
	copyRange(room[start:start+n], d.a, d.b, off)
	p.Len = uint16(padFrame(room, start+n))
	return lp.resolveAndSend(p, d.nextHop)
}

// copyRange copies bytes [off, off+len(dst)) of a||b into dst.
func copyRange(dst, a, b []byte, off int) {
	if off < len(a) {
		k := copy(dst, a[off:])
		dst = dst[k:]
		off = 0
	} else {
		off -= len(a)
	}
	if len(dst) > 0 {
		copy(dst, b[off:])
	}
}

// handOver passes a datagram to another interface's loop (non-blocking).
func (lp *Loop) handOver(nic int, src, dst header.IPv4Addr, proto, tos, ttl uint8, df bool, a, b []byte) bool {
	n := lp.s.NIC(nic)
	if n == nil {
		lp.c.inc(IPNoRoute)
		return false
	}
	m := socket.Meta{Local: netip.AddrPortFrom(netip.AddrFrom4(src), 0), Remote: netip.AddrPortFrom(netip.AddrFrom4(dst), 0), Proto: proto, TOS: tos, TTL: ttl}
	if df {
		m.Flags |= socket.FlagDontFragment
	}
	other := n.loops[flowHash(m, len(n.loops))]
	if !other.handoff.Push(m, a, b) {
		lp.c.inc(TxHandoffDrops)
		return false
	}
	other.wake()
	return true
}

// resolveAndSend fills in the destination MAC for nextHop and queues the
// frame, or parks it until ARP resolves the next hop. It reports whether
// the frame was queued or parked (else it was freed and the reason
// counted).
func (lp *Loop) resolveAndSend(p dma.Packet, nextHop header.IPv4Addr) bool {
	eth := header.Ethernet(p.Data())
	if lp.nic.isBroadcast(nextHop) {
		eth.SetDst(header.BroadcastMAC)
		return lp.queueTx(p)
	}
	mac, ok, req, full := lp.nic.arp.Resolve(nextHop, lp.now)
	if req.Target != (header.IPv4Addr{}) {
		lp.sendARPRequest(req)
	}
	switch {
	case ok:
		eth.SetDst(mac)
		return lp.queueTx(p)
	case full:
		p.Free() // counted by the cache: arp_table_full
		return false
	default:
		return lp.park(p, nextHop)
	}
}

// park keeps a frame until its next hop resolves, within the queue limits.
func (lp *Loop) park(p dma.Packet, nextHop header.IPv4Addr) bool {
	same := 0
	for i := range lp.pending {
		if lp.pending[i].nextHop == nextHop {
			same++
		}
	}
	if len(lp.pending) == cap(lp.pending) || same >= lp.s.cfg.PendingPerNeighbour {
		lp.c.inc(ARPQueueFull)
		p.Free()
		return false
	}
	if len(lp.pending) == 0 {
		lp.pendingGen = lp.nic.arp.Generation()
	}
	lp.pending = append(lp.pending, pendingPkt{pkt: p, nextHop: nextHop, since: lp.now})
	return true
}

// flushPending sends parked frames whose next hop resolved and drops those
// whose resolution failed or that waited longer than resolution can take.
func (lp *Loop) flushPending() {
	lp.pendingGen = lp.nic.arp.Generation()
	cfg := lp.nic.arp.Config()
	maxWait := time.Duration(cfg.MaxProbes+1) * cfg.RetransTime
	keep := lp.pending[:0]
	for _, pp := range lp.pending {
		mac, st := lp.nic.arp.Lookup(pp.nextHop)
		switch {
		case st == arp.Reachable || st == arp.Stale || st == arp.Probe:
			header.Ethernet(pp.pkt.Data()).SetDst(mac)
			lp.queueTx(pp.pkt)
		case st == arp.Absent || lp.now.Sub(pp.since) > maxWait:
			lp.c.inc(ARPFailed)
			pp.pkt.Free()
		default:
			keep = append(keep, pp)
		}
	}
	clear(lp.pending[len(keep):])
	lp.pending = keep
}

// queueTx adds a frame to the transmit batch, sending when it is full. It
// reports false (the frame freed, tx_ring_full counted) when the ring stays
// full.
func (lp *Loop) queueTx(p dma.Packet) bool {
	if len(lp.tx) == cap(lp.tx) {
		lp.flushTx()
		if len(lp.tx) == cap(lp.tx) {
			lp.c.inc(TxRingFull)
			p.Free()
			return false
		}
	}
	lp.tx = append(lp.tx, p)
	return true
}

// flushTx hands the batch to the link. Frames it does not accept stay for
// the next flush.
func (lp *Loop) flushTx() {
	if len(lp.tx) == 0 {
		return
	}
	n, err := lp.nic.link.TxBatch(lp.q, lp.tx)
	for _, p := range lp.tx[:n] {
		lp.c.add(TxBytes, uint64(p.Len))
	}
	lp.c.add(TxFrames, uint64(n))
	if err != nil {
		lp.c.inc(TxErrors)
		for _, p := range lp.tx[n:] {
			p.Free()
		}
		lp.tx = lp.tx[:0]
		return
	}
	rest := copy(lp.tx, lp.tx[n:])
	clear(lp.tx[rest:])
	lp.tx = lp.tx[:rest]
}

// L4Checksum is what the device found of a received segment's TCP or UDP
// checksum.
type L4Checksum uint8

const (
	L4ChecksumUnchecked L4Checksum = iota // verify it in software
	L4ChecksumGood                        // the device verified it
	L4ChecksumBad                         // the device found it wrong
)

// RxL4Checksum says whether the device verified the TCP or UDP checksum of
// the frame being processed (82599 L4CS, with TCPE when wrong; datasheet
// 7.1.11), counting rx_csum_offloaded when it did and found it good. Call it
// once per segment. Transport handlers parse with the Verified variants when it is
// L4ChecksumGood and count a checksum error when it is L4ChecksumBad.
func (lp *Loop) RxL4Checksum() L4Checksum {
	switch lp.rxMeta & (dma.RxL4Checked | dma.RxL4Bad) {
	case dma.RxL4Checked:
		lp.c.inc(RxCsumOffloaded)
		return L4ChecksumGood
	case dma.RxL4Checked | dma.RxL4Bad:
		return L4ChecksumBad
	}
	return L4ChecksumUnchecked
}

// Now returns the time of the current poll iteration.
func (lp *Loop) Now() time.Time { return lp.now }

// Timers returns the loop's timer queue (run at the start of each
// iteration with Now): a transport arms its per-connection timers here.
func (lp *Loop) Timers() *timer.Queue { return &lp.timers }

// NIC returns the interface the loop serves.
func (lp *Loop) NIC() *NIC { return lp.nic }

// Queue returns the loop's queue number.
func (lp *Loop) Queue() int { return lp.q }

// Wake makes a sleeping loop poll now (safe from any goroutine): an
// application that queued work for the loop calls it.
func (lp *Loop) Wake() { lp.wake() }

// Output sends an IP datagram whose payload is a followed by b, from src to
// dst, fragmenting and resolving as needed. It reports whether the datagram
// went out (queued, or waiting for ARP); when not, the stack counted why.
func (lp *Loop) Output(src, dst header.IPv4Addr, proto, tos, ttl uint8, a, b []byte) bool {
	return lp.output(src, dst, proto, tos, ttl, a, b)
}

// SendICMPError answers orig with an ICMP error (subject to RFC 1122's
// rules and the rate limit).
func (lp *Loop) SendICMPError(orig header.IPv4, typ, code uint8, rest uint32) {
	lp.sendICMPError(orig, typ, code, rest)
}

// PayloadBuilder writes a transport segment directly into the frame that
// will carry it.
type PayloadBuilder interface {
	// BuildPayload fills b (exactly the length announced to OutputBuilt)
	// with the IP payload: header and data, checksum included, for a
	// datagram from src to dst.
	BuildPayload(b []byte, src, dst header.IPv4Addr)
}

// NoChecksumBuilder is a PayloadBuilder that can leave its TCP or UDP
// checksum to the device: OutputBuilt calls BuildPayloadNoChecksum instead
// of BuildPayload when the link inserts checksums (link.Offloader with
// dma.OffloadTxL4Csum) and asks the device for it (dma.TxL4Csum).
type NoChecksumBuilder interface {
	BuildPayloadNoChecksum(b []byte)
}

// OutputBuilt sends an IP datagram of n payload bytes that pb writes in
// place, in the frame's buffer: no intermediate copy. It sets DF when df is
// true. It reports false (and counts why) when the datagram could not be
// built: no route, no buffer, or larger than the path MTU with DF set. A
// route through another interface goes through that loop's hand-off queue
// (one copy).
func (lp *Loop) OutputBuilt(src, dst header.IPv4Addr, proto, tos, ttl uint8, df bool, n int, pb PayloadBuilder) bool {
	r, ok := lp.s.routes.Lookup(netip.AddrFrom4(dst))
	if !ok {
		lp.c.inc(IPNoRoute)
		return false
	}
	if n+header.IPv4MinHeaderLen > lp.s.pmtu.lookup(dst, lp.nic.mtu, lp.now) && (df || r.NIC != lp.nic.id) {
		lp.c.inc(IPFragNeeded)
		return false
	}
	if r.NIC != lp.nic.id || n+header.IPv4MinHeaderLen > lp.s.pmtu.lookup(dst, lp.nic.mtu, lp.now) {
		// Through another interface, or to be fragmented: build aside.
		if cap(lp.scratch) < n {
			lp.scratch = make([]byte, max(n, 2048))
		}
		b := lp.scratch[:n]
		pb.BuildPayload(b, src, dst)
		lp.outputFlags(src, dst, proto, tos, ttl, df, b, nil)
		return true
	}
	p, err := lp.pool.Alloc()
	if err != nil {
		lp.c.inc(TxNoBuffers)
		return false
	}
	room := p.Room()
	flags := uint8(0)
	if df {
		flags = header.IPv4FlagDontFragment
	}
	header.EncodeEthernet(room, header.MAC{}, lp.nic.mac, header.EtherTypeIPv4)
	header.EncodeIPv4(room[header.EthernetHeaderLen:], header.IPv4Fields{
		TOS: tos, TotalLen: uint16(header.IPv4MinHeaderLen + n), ID: lp.s.nextID(), Flags: flags,
		TTL: ttl, Protocol: proto, Src: src, Dst: dst,
	})
	if nb, ok := pb.(NoChecksumBuilder); ok && lp.txL4Offload && (proto == header.IPProtocolTCP || proto == header.IPProtocolUDP) {
		nb.BuildPayloadNoChecksum(room[ethIPHeaders : ethIPHeaders+n])
		p.Meta = dma.TxL4Csum
		lp.c.inc(TxCsumOffloaded)
	} else {
		pb.BuildPayload(room[ethIPHeaders:ethIPHeaders+n], src, dst)
	}
	p.Len = uint16(padFrame(room, ethIPHeaders+n))
	lp.resolveAndSend(p, r.NextHop(netip.AddrFrom4(dst)).As4())
	return true
}

// PathMTU returns the MTU towards dst as this loop's interface sees it.
func (lp *Loop) PathMTU(dst header.IPv4Addr) int { return lp.s.pmtu.lookup(dst, lp.nic.mtu, lp.now) }

// IsBroadcast reports whether a is a broadcast address of the loop's
// interface.
func (lp *Loop) IsBroadcast(a header.IPv4Addr) bool { return lp.nic.isBroadcast(a) }
