// Package stack is verinic's IPv4 protocol stack over user-space NIC queues:
// interfaces bound to a link (an *ixgbe.NIC, a simulated NIC, or an
// in-memory link), each receive queue run to completion by its own poll
// loop, with ARP (RFC 826), IPv4 (RFC 791) with fragmentation and bounded
// reassembly, ICMP (RFC 792) echo and errors with Linux-style rate limiting,
// and UDP (RFC 768) sockets.
//
// Threading model:
//
//   - One poll loop goroutine per (interface, queue). It alone touches that
//     queue's mempool, RX and TX rings, reassembly buffers and timers. It
//     receives a batch, processes every frame to completion (replies are
//     built and queued for transmission at once), drains its hand-off
//     queue, and transmits the batch with one TxBatch.
//   - Applications call sockets from their own goroutines. Receive: the
//     loop copies payloads into the socket's queue (mutex + notification
//     channel). Send: the application routes, builds the 8-byte transport
//     header and copies header and payload into the hand-off queue of the
//     outgoing interface's loop (mutex-protected ring), then wakes the
//     loop, which builds the frames in its own mempool. No buffer of a
//     mempool ever crosses goroutines.
//   - Shared state is either immutable snapshots behind atomic pointers
//     (routes, addresses) or has its own lock (ARP cache, socket tables,
//     ICMP rate limiter).
//
// Transports other than ICMP and UDP (TCP next) plug in with
// RegisterTransport: their handler runs on the poll loop that received the
// datagram and uses the Loop's timer queue, clock and output path; their
// sockets build on package socket (deadlines, readiness, closed state) and
// their demultiplexing on package demux, as UDP's do.
//
// What a host does not do here: forwarding (datagrams for other hosts are
// counted and dropped, so this stack never generates "fragmentation needed";
// it honours received ones, RFC 1191), source routing (the options are
// ignored, not reversed in replies), loopback, broadcast
// and multicast sending. IP options are checked as Linux checks them (a
// malformed one is answered with ICMP Parameter Problem, RFC 1122 3.2.2.5);
// Record Route and Timestamp in an echo request come back in the reply,
// updated (RFC 1122 3.2.2.6); ICMP timestamp requests are answered (RFC 792).
//
// A stack can also be polled by hand (Poll) with a fake clock, for
// deterministic tests; Start runs the loops on goroutines instead.
package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/arp"
	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/icmp"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/reassembly"
	"github.com/verinic/verinic/proto/route"
	"github.com/verinic/verinic/proto/socket"
	"github.com/verinic/verinic/proto/udp"
)

// Config configures a stack. Zero fields take defaults.
type Config struct {
	Clock         clock.Clock // default clock.Real
	ARP           arp.Config
	Reassembly    reassembly.Config // per poll loop
	ICMPRateLimit icmp.RateLimitConfig
	UDP           udp.Config
	// HandoffBytes is the size of each poll loop's queue of datagrams
	// handed over by application goroutines (default 1 MiB).
	HandoffBytes int
	// Batch is the RX and TX batch size (default 32).
	Batch int
	// IdleSleep bounds how long an idle poll loop sleeps between polls
	// (default 200 µs; negative: never sleep, only yield: lowest latency,
	// one busy core per loop). Sends from applications wake it at once.
	IdleSleep time.Duration
	// NoTxChecksumOffload makes TCP compute its checksums in software even
	// when the link inserts them (link.Offloader, dma.OffloadTxL4Csum).
	NoTxChecksumOffload bool
	// NoTSO makes TCP build one-MSS segments even when the link cuts large
	// ones itself (link.Offloader with dma.OffloadTSO, link.Allocator for
	// the buffers). NoTxChecksumOffload implies it.
	NoTSO bool
	// Housekeeping is the period of ARP timers and the aging of packets
	// waiting for resolution (default 100 ms).
	Housekeeping time.Duration
	// PendingPackets bounds the packets per loop waiting for ARP (default
	// 256), PendingPerNeighbour those for one next hop (default 64).
	PendingPackets      int
	PendingPerNeighbour int
	// Logger receives the events worth an operator's attention (a
	// neighbour's MAC changing), rate-limited (default slog.Default()).
	Logger *slog.Logger
}

// ARPChangeLogInterval is the least time between two log messages about
// neighbours' MAC changes on one interface; the changes in between are
// counted (arp_mac_changed) and the next message says how many were not
// logged.
const ARPChangeLogInterval = 5 * time.Second

// NICConfig configures an interface.
type NICConfig struct {
	Name string
	MTU  int // default 1500
}

// Stack is an IPv4 host stack.
type Stack struct {
	cfg     Config
	clock   clock.Clock
	logger  *slog.Logger
	routes  route.Table
	udp     *udp.Protocol
	icmp    *icmp.Protocol
	limiter *icmp.RateLimiter
	ipID    atomic.Uint32
	pmtu    pmtuCache

	// transports handles protocols other than ICMP and UDP (TCP).
	transports [256]TransportHandler
	// errHandlers receive ICMP errors about datagrams of their protocol.
	errHandlers [256]ErrorHandler
	// pollHooks run on every poll loop at each iteration (transports'
	// deferred work: output for application calls, hand-offs).
	pollHooks []PollHook
	// closers run when the stack closes, after the loops stopped.
	closers []func()

	mu      sync.Mutex // serializes configuration changes
	nics    atomic.Pointer[[]*NIC]
	running bool
	stop    chan struct{}
	wg      sync.WaitGroup
	loopErr atomic.Pointer[error]
}

// NIC is one interface of the stack.
type NIC struct {
	s        *Stack
	id       int
	name     string
	link     link.Link
	mac      header.MAC
	mtu      int
	addrs    atomic.Pointer[[]netip.Prefix]
	arp      *arp.Cache
	loops    []*Loop
	announce chan header.IPv4Addr // addresses to announce by gratuitous ARP
	macLog   rateLog              // neighbours' MAC changes
}

// rateLog lets one message through per ARPChangeLogInterval and counts the
// ones it holds back.
type rateLog struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// logMACChange logs that neighbour ip moved from MAC old to new, unless a
// message went out less than ARPChangeLogInterval ago (the change is
// counted in arp_mac_changed either way). RFC 826 lets any ARP packet
// update a known sender's MAC; a change is how cache poisoning shows, so an
// operator wants to hear of it (as arpwatch reports "changed ethernet
// address"), but a flood of them must not flood the log.
func (n *NIC) logMACChange(ip header.IPv4Addr, old, new header.MAC, now time.Time) {
	n.macLog.mu.Lock()
	if now.Before(n.macLog.next) {
		n.macLog.suppressed++
		n.macLog.mu.Unlock()
		return
	}
	suppressed := n.macLog.suppressed
	n.macLog.suppressed = 0
	n.macLog.next = now.Add(ARPChangeLogInterval)
	n.macLog.mu.Unlock()
	n.s.logger.Warn("stack: neighbour's MAC address changed (ARP cache poisoning?)",
		"interface", n.name, "ip", ip.String(), "old", old.String(), "new", new.String(), "suppressed", suppressed)
}

// Errors.
var (
	ErrNoRoute    = fmt.Errorf("%w: %w", route.ErrNoRoute, syscall.ENETUNREACH)
	ErrNoAddress  = fmt.Errorf("cannot assign requested address: %w", syscall.EADDRNOTAVAIL)
	ErrNotRunning = errors.New("stack: not running")
	errLoopback   = fmt.Errorf("stack: sending to a local address needs a loopback interface, which this stack does not have: %w", syscall.ENETUNREACH)
)

// New returns a stack with no interfaces.
func New(cfg Config) *Stack {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	if cfg.HandoffBytes <= 0 {
		cfg.HandoffBytes = 1 << 20
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.IdleSleep == 0 {
		cfg.IdleSleep = 200 * time.Microsecond
	}
	if cfg.Housekeeping <= 0 {
		cfg.Housekeeping = 100 * time.Millisecond
	}
	if cfg.PendingPackets <= 0 {
		cfg.PendingPackets = 256
	}
	if cfg.PendingPerNeighbour <= 0 {
		cfg.PendingPerNeighbour = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Stack{cfg: cfg, clock: cfg.Clock, logger: cfg.Logger, limiter: icmp.NewRateLimiter(cfg.ICMPRateLimit)}
	s.udp = udp.New(s, cfg.UDP)
	s.icmp = icmp.New(s)
	s.nics.Store(&[]*NIC{})
	s.ipID.Store(uint32(cfg.Clock.Now().UnixNano()))
	return s
}

// AddNIC adds an interface over l, with one poll loop per receive queue.
// Interfaces are numbered from 1 in the order added.
func (s *Stack) AddNIC(l link.Link, cfg NICConfig) (*NIC, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil, errors.New("stack: add interfaces before Start")
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	mac := l.MAC()
	if len(mac) != 6 {
		return nil, fmt.Errorf("stack: link MAC %v is not 6 bytes", mac)
	}
	nrx := l.NumRxQueues()
	if nrx < 1 || l.NumTxQueues() < nrx {
		return nil, fmt.Errorf("stack: link has %d RX and %d TX queues; need at least one of each and a TX queue per RX queue", nrx, l.NumTxQueues())
	}
	old := *s.nics.Load()
	n := &NIC{s: s, id: len(old) + 1, name: cfg.Name, link: l, mac: header.MAC(mac), arp: arp.New(s.cfg.ARP), announce: make(chan header.IPv4Addr, 16)}
	if n.name == "" {
		n.name = fmt.Sprintf("nic%d", n.id)
	}
	for q := 0; q < nrx; q++ {
		pool := l.RxPool(q)
		if pool == nil {
			return nil, fmt.Errorf("stack: link has no mempool for queue %d", q)
		}
		// Frames are built in the pool's buffers after the headroom.
		maxMTU := pool.BufSize() - header.EthernetHeaderLen
		if cfg.MTU < 576 || cfg.MTU > maxMTU {
			return nil, fmt.Errorf("stack: MTU %d outside 576..%d (buffer size %d)", cfg.MTU, maxMTU, pool.BufSize())
		}
		n.loops = append(n.loops, newLoop(s, n, q, pool))
	}
	n.mtu = cfg.MTU
	if rn, ok := l.(link.RxNotifier); ok {
		for q, lp := range n.loops {
			lp.notified = rn.SetRxNotify(q, lp.wake)
		}
	}
	n.addrs.Store(&[]netip.Prefix{})
	nics := append(append([]*NIC(nil), old...), n)
	s.nics.Store(&nics)
	return n, nil
}

// ID returns the interface number.
func (n *NIC) ID() int { return n.id }

// Name returns the interface name.
func (n *NIC) Name() string { return n.name }

// MAC returns the interface's MAC address.
func (n *NIC) MAC() header.MAC { return n.mac }

// MTU returns the interface MTU.
func (n *NIC) MTU() int { return n.mtu }

// ARP returns the interface's neighbour cache.
func (n *NIC) ARP() *arp.Cache { return n.arp }

// Addresses returns the interface's addresses with their prefix lengths.
func (n *NIC) Addresses() []netip.Prefix { return append([]netip.Prefix(nil), *n.addrs.Load()...) }

func (n *NIC) hasAddr(a header.IPv4Addr) bool {
	for _, p := range *n.addrs.Load() {
		if p.Addr().As4() == a {
			return true
		}
	}
	return false
}

// isBroadcast reports whether a is the limited broadcast or the directed
// broadcast of one of n's subnets.
func (n *NIC) isBroadcast(a header.IPv4Addr) bool {
	if a.IsBroadcast() {
		return true
	}
	for _, p := range *n.addrs.Load() {
		if p.Bits() < 31 {
			base := header.IPv4Addr(p.Masked().Addr().As4()).Uint32()
			if a.Uint32() == base|^uint32(0)>>p.Bits() {
				return true
			}
		}
	}
	return false
}

// onLink reports whether a is in one of n's subnets.
func (n *NIC) onLink(a header.IPv4Addr) bool {
	for _, p := range *n.addrs.Load() {
		if p.Contains(netip.AddrFrom4(a)) {
			return true
		}
	}
	return false
}

// sourceFor picks n's address to use towards next hop nh: one whose
// subnet contains it, else the first.
func (n *NIC) sourceFor(nh netip.Addr) (netip.Addr, bool) {
	addrs := *n.addrs.Load()
	for _, p := range addrs {
		if p.Contains(nh) {
			return p.Addr(), true
		}
	}
	if len(addrs) > 0 {
		return addrs[0].Addr(), true
	}
	return netip.Addr{}, false
}

// NIC returns interface id, or nil.
func (s *Stack) NIC(id int) *NIC {
	nics := *s.nics.Load()
	if id < 1 || id > len(nics) {
		return nil
	}
	return nics[id-1]
}

// NICs returns the interfaces.
func (s *Stack) NICs() []*NIC { return append([]*NIC(nil), *s.nics.Load()...) }

// AddAddress assigns prefix's address to interface nic, adds the route to
// its subnet, and announces it with a gratuitous ARP request (RFC 5227
// section 2.3).
func (s *Stack) AddAddress(nic int, prefix netip.Prefix) error {
	n := s.NIC(nic)
	if n == nil {
		return fmt.Errorf("stack: no interface %d", nic)
	}
	if !prefix.Addr().Is4() || prefix.Addr().IsUnspecified() || prefix.Addr().IsMulticast() {
		return fmt.Errorf("stack: %v is not a unicast IPv4 address", prefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.IsLocal(prefix.Addr()) {
		return fmt.Errorf("stack: address %v already assigned", prefix.Addr())
	}
	addrs := append(append([]netip.Prefix(nil), *n.addrs.Load()...), prefix)
	n.addrs.Store(&addrs)
	// The subnet's route, unless a primary address already made it (a
	// secondary address in the same subnet, as Linux's).
	covered := false
	for _, r := range s.routes.Routes() {
		if r.Prefix == prefix.Masked() && r.NIC == nic && !r.Gateway.IsValid() {
			covered = true
		}
	}
	if !covered {
		if err := s.routes.Add(route.Route{Prefix: prefix.Masked(), NIC: nic, Src: prefix.Addr()}); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
	}
	select {
	case n.announce <- prefix.Addr().As4():
	default: // many addresses at once: the first 16 are announced
	}
	n.loops[0].wake()
	return nil
}

// AddRoute adds a route; a zero Src takes the interface's address.
func (s *Stack) AddRoute(r route.Route) error {
	if s.NIC(r.NIC) == nil {
		return fmt.Errorf("stack: route %v: no interface %d", r, r.NIC)
	}
	return s.routes.Add(r)
}

// Routes returns the routing table.
func (s *Stack) Routes() []route.Route { return s.routes.Routes() }

// Clock implements socket.Network.
func (s *Stack) Clock() clock.Clock { return s.clock }

// IsLocal implements socket.Network.
func (s *Stack) IsLocal(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	a4 := a.As4()
	for _, n := range *s.nics.Load() {
		if n.hasAddr(a4) {
			return true
		}
	}
	return false
}

func (s *Stack) isLocal4(a header.IPv4Addr) bool {
	for _, n := range *s.nics.Load() {
		if n.hasAddr(a) {
			return true
		}
	}
	return false
}

// Route implements socket.Network.
func (s *Stack) Route(dst, src netip.Addr) (socket.Route, error) {
	if !dst.Is4() || dst.IsUnspecified() {
		return socket.Route{}, fmt.Errorf("stack: route to %v: %w", dst, syscall.EINVAL)
	}
	if s.IsLocal(dst) || dst.IsLoopback() {
		return socket.Route{}, errLoopback
	}
	if dst.As4() == header.IPv4Broadcast || dst.IsMulticast() {
		return socket.Route{}, fmt.Errorf("stack: route to %v: broadcast and multicast sending are not supported: %w", dst, syscall.EACCES)
	}
	r, ok := s.routes.Lookup(dst)
	if !ok {
		return socket.Route{}, fmt.Errorf("stack: route to %v: %w", dst, ErrNoRoute)
	}
	n := s.NIC(r.NIC)
	if n == nil {
		return socket.Route{}, fmt.Errorf("stack: route to %v: %w", dst, ErrNoRoute)
	}
	nh := r.NextHop(dst)
	switch {
	case src.IsValid() && !src.IsUnspecified():
		if !s.IsLocal(src) {
			return socket.Route{}, fmt.Errorf("stack: source %v: %w", src, ErrNoAddress)
		}
	case r.Src.IsValid():
		src = r.Src
	default:
		var ok bool
		if src, ok = n.sourceFor(nh); !ok {
			return socket.Route{}, fmt.Errorf("stack: interface %s has no address: %w", n.name, ErrNoAddress)
		}
	}
	return socket.Route{NIC: r.NIC, Src: src, NextHop: nh, MTU: s.pmtu.lookup(dst.As4(), n.mtu, s.clock.Now())}, nil
}

// SendDatagram implements socket.Network.
func (s *Stack) SendDatagram(b *socket.Base, r socket.Route, m socket.Meta, l4 [8]byte, payload []byte) error {
	n := s.NIC(r.NIC)
	if n == nil {
		return ErrNoRoute
	}
	lp := n.loops[flowHash(m, len(n.loops))]
	waited := false
	for {
		if lp.handoff.Push(m, l4[:], payload) {
			lp.wake()
			if waited {
				// Pass the space notification on to the next blocked
				// writer, if any: there may be room for it too.
				lp.handoffSpace.Notify()
			}
			return nil
		}
		lp.wake()
		if err := b.WaitWritable(lp.handoffSpace.C()); err != nil {
			return err
		}
		waited = true
	}
}

func flowHash(m socket.Meta, n int) int {
	if n == 1 {
		return 0
	}
	a, b := m.Local.Addr().As4(), m.Remote.Addr().As4()
	h := uint32(2166136261)
	for _, x := range a {
		h = (h ^ uint32(x)) * 16777619
	}
	for _, x := range b {
		h = (h ^ uint32(x)) * 16777619
	}
	return int(h % uint32(n))
}

func (s *Stack) nextID() uint16 { return uint16(s.ipID.Add(1)) }

// ListenUDP opens a UDP socket bound to laddr (port 0: ephemeral; address
// invalid or 0.0.0.0: any).
func (s *Stack) ListenUDP(laddr netip.AddrPort) (*udp.Socket, error) { return s.udp.Listen(laddr) }

// DialUDP opens a UDP socket connected to raddr, bound to laddr (may be
// zero).
func (s *Stack) DialUDP(laddr, raddr netip.AddrPort) (*udp.Socket, error) {
	return s.udp.Dial(laddr, raddr)
}

// NewEcho opens an ICMP echo socket (ident 0: pick one).
func (s *Stack) NewEcho(ident uint16) (*icmp.EchoSocket, error) { return s.icmp.NewEcho(ident) }

// TransportHandler receives, on a poll loop, every datagram of its protocol
// addressed to this host: header validated, fragments reassembled. ip is
// valid only during the call; broadcast says whether it was sent to a
// broadcast address.
type TransportHandler func(lp *Loop, ip header.IPv4, broadcast bool)

// RegisterTransport installs the handler of IP protocol proto (TCP: 6).
// ICMP and UDP are built in. Call it before Start. Datagrams of protocols
// without a handler are answered with ICMP protocol unreachable.
func (s *Stack) RegisterTransport(proto uint8, h TransportHandler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.running:
		return errors.New("stack: register transports before Start")
	case proto == header.IPProtocolICMP || proto == header.IPProtocolUDP:
		return fmt.Errorf("stack: protocol %d is built in", proto)
	case s.transports[proto] != nil:
		return fmt.Errorf("stack: protocol %d already has a handler", proto)
	}
	s.transports[proto] = h
	return nil
}

// ErrorHandler receives, on a poll loop, an ICMP error (type, code, and the
// rest-of-header word: the next-hop MTU for "fragmentation needed") about a
// datagram of its protocol that this host sent; quoted is the IP header and
// at least 8 bytes of the offending datagram (RFC 792, RFC 1122 3.2.2). It
// reports whether the quote is of a datagram the transport really sent (TCP:
// a sequence number in flight, RFC 5927 5.1): only then does a
// "fragmentation needed" update the path MTU cache (RFC 1191), after the
// handler returns.
type ErrorHandler func(lp *Loop, typ, code uint8, rest uint32, quoted header.IPv4) bool

// RegisterErrorHandler installs the ICMP error handler of protocol proto.
// Call it before Start.
func (s *Stack) RegisterErrorHandler(proto uint8, h ErrorHandler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("stack: register error handlers before Start")
	}
	if s.errHandlers[proto] != nil {
		return fmt.Errorf("stack: protocol %d already has an error handler", proto)
	}
	s.errHandlers[proto] = h
	return nil
}

// PollHook runs on a poll loop once per iteration, before the loop
// transmits its batch, and returns the work it did (0 when idle). A
// transport uses it for work that application goroutines queue for the
// loop (then call Loop.Wake).
type PollHook func(lp *Loop) int

// RegisterPollHook installs h on every poll loop. Call it before Start.
func (s *Stack) RegisterPollHook(h PollHook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("stack: register poll hooks before Start")
	}
	s.pollHooks = append(s.pollHooks, h)
	return nil
}

// OnClose registers f to run when Close has stopped the poll loops (a
// transport closes its sockets there, so blocked calls return).
func (s *Stack) OnClose(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, f)
}

// LoopFor returns the poll loop of interface nic that a flow between local
// and remote is assigned to when the application starts it (the same hash
// SendDatagram uses).
func (s *Stack) LoopFor(nic int, local, remote netip.AddrPort) *Loop {
	n := s.NIC(nic)
	if n == nil {
		return nil
	}
	return n.loops[flowHash(socket.Meta{Local: local, Remote: remote}, len(n.loops))]
}

// Loops returns the interface's poll loops, one per receive queue.
func (n *NIC) Loops() []*Loop { return append([]*Loop(nil), n.loops...) }

// UDP returns the UDP layer (for its counters).
func (s *Stack) UDP() *udp.Protocol { return s.udp }

// Counters returns a snapshot of every counter, summed over interfaces and
// poll loops, with the drops of the devices below (DevRx*) when their links
// count them (link.DropCounter; reading them may read the device's
// statistics registers).
func (s *Stack) Counters() Counters {
	var c Counters
	for _, n := range *s.nics.Load() {
		for _, lp := range n.loops {
			for i := Counter(0); i < ReasmOverlaps; i++ {
				c.v[i] += lp.c[i].Load()
			}
			rc := lp.reasm.Counters()
			c.v[ReasmOverlaps] += rc.Overlaps.Load()
			c.v[ReasmDuplicates] += rc.Duplicates.Load()
			c.v[ReasmMalformed] += rc.Malformed.Load()
			c.v[ReasmTooBig] += rc.TooBig.Load()
			c.v[ReasmTooManyFrags] += rc.TooManyFrags.Load()
			c.v[ReasmTimeouts] += rc.Timeouts.Load()
			c.v[ReasmEvicted] += rc.MemoryEvicted.Load()
			c.v[ReasmNoMemory] += rc.NoMemory.Load()
			c.v[ReasmAfterDrop] += rc.AfterDrop.Load()
			c.v[ReasmMemory] += uint64(lp.reasm.MemoryInUse())
		}
		if dc, ok := n.link.(link.DropCounter); ok {
			missed, ringFull, crc, under, over, filtered, driver := dc.RxDrops()
			c.v[DevRxMissed] += missed
			c.v[DevRxRingFull] += ringFull
			c.v[DevRxCRCErrors] += crc
			c.v[DevRxUndersize] += under
			c.v[DevRxOversize] += over
			c.v[DevRxFiltered] += filtered
			c.v[DevRxDriverDrops] += driver
		}
		c.v[ARPEntries] += uint64(n.arp.Len())
		c.v[ARPEvicted] += n.arp.Counters().Evicted.Load()
		c.v[ARPMACChanged] += n.arp.Counters().MACChanged.Load()
		c.v[ARPTableFull] += n.arp.Counters().TableFull.Load()
	}
	c.v[ICMPRateLimited] += s.limiter.Limited.Load()
	return c
}

// PathMTU returns the MTU the stack uses towards dst on interface nic's
// link: the path MTU learnt from ICMP (RFC 1191), else the link's.
func (s *Stack) PathMTU(nic int, dst netip.Addr) int {
	n := s.NIC(nic)
	if n == nil || !dst.Is4() {
		return 0
	}
	return s.pmtu.lookup(dst.As4(), n.mtu, s.clock.Now())
}

// ReassemblyMemory returns the bytes held by reassembly over all loops and
// the sum of their limits.
func (s *Stack) ReassemblyMemory() (inUse, limit int) {
	for _, n := range *s.nics.Load() {
		for _, lp := range n.loops {
			inUse += lp.reasm.MemoryInUse()
			limit += lp.reasm.MemoryLimit()
		}
	}
	return inUse, limit
}

// Start runs every poll loop on its own goroutine.
func (s *Stack) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("stack: already running")
	}
	s.running = true
	s.stop = make(chan struct{})
	for _, n := range *s.nics.Load() {
		for _, lp := range n.loops {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				lp.run(s.stop)
			}()
		}
	}
	return nil
}

// Close stops the poll loops and waits for them, then closes every socket
// (blocked calls return net.ErrClosed). The links stay the caller's to
// close.
func (s *Stack) Close() error {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		s.udp.CloseAll()
		return nil
	}
	s.running = false
	close(s.stop)
	s.mu.Unlock()
	s.wg.Wait()
	// Sockets cannot outlive the loops that serve them: close them so that
	// blocked readers return net.ErrClosed instead of waiting forever.
	s.udp.CloseAll()
	for _, f := range s.closers {
		f()
	}
	for _, n := range *s.nics.Load() {
		for _, lp := range n.loops {
			lp.release()
		}
	}
	if p := s.loopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Poll runs one iteration of every poll loop on the calling goroutine and
// returns how much work they did (frames received, datagrams sent, timers
// fired). It is for tests that drive the stack by hand, with Start never
// called.
func (s *Stack) Poll() int {
	work := 0
	for _, n := range *s.nics.Load() {
		for _, lp := range n.loops {
			work += lp.poll()
		}
	}
	return work
}

// PollUntilIdle polls until an iteration does no work (at most max
// iterations) and returns the iterations run.
func (s *Stack) PollUntilIdle(max int) int {
	for i := 1; i <= max; i++ {
		if s.Poll() == 0 {
			return i
		}
	}
	return max
}
