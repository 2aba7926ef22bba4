// Package udp implements UDP sockets (RFC 768) over the stack's network
// layer: bind (explicit or ephemeral), connect, send and receive with the
// checksum generated on send (the stack checks it on receive), a bounded
// receive queue per socket (drops counted, as Linux's RcvbufErrors), and
// ICMP errors turned into ECONNREFUSED and friends on connected sockets, as
// Linux does (RFC 1122 4.1.3.3).
//
// Sending copies the datagram into the hand-off queue of the route's poll
// loop (socket.Network.SendDatagram) and never allocates; receiving copies
// out of the socket's queue and never allocates.
package udp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/verinic/verinic/proto/checksum"
	"github.com/verinic/verinic/proto/demux"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/socket"
)

// Proto is UDP's IP protocol number.
const Proto = header.IPProtocolUDP

// MaxPayload is the largest UDP payload over IPv4: 65535 - 20 - 8.
const MaxPayload = 65507

// Config sets socket buffer sizes. Zero fields take the defaults.
type Config struct {
	RecvBufferBytes     int // payload bytes queued per socket (default 256 KiB)
	RecvBufferDatagrams int // datagrams queued per socket (default 1024)
}

// Errors, wrapping the errno the standard library would report.
var (
	ErrMessageTooLong = fmt.Errorf("message too long: %w", syscall.EMSGSIZE)
	ErrNotConnected   = fmt.Errorf("destination address required: %w", syscall.EDESTADDRREQ)
	ErrBadAddress     = fmt.Errorf("invalid argument: %w", syscall.EINVAL)
	ErrRefused        = fmt.Errorf("connection refused: %w", syscall.ECONNREFUSED)
	ErrHostUnreach    = fmt.Errorf("no route to host: %w", syscall.EHOSTUNREACH)
	ErrNetUnreach     = fmt.Errorf("network is unreachable: %w", syscall.ENETUNREACH)
)

// Counters of the protocol. Read with Load.
type Counters struct {
	Delivered    atomic.Uint64 // datagrams queued to a socket
	NoPort       atomic.Uint64 // datagrams for a port nobody listens on
	RcvbufErrors atomic.Uint64 // datagrams dropped on a full receive queue
	Sent         atomic.Uint64 // datagrams handed to the network layer
	SendErrors   atomic.Uint64 // sends that failed (no route, closed, deadline)
}

// Protocol is the UDP layer of one stack: its socket table and defaults.
type Protocol struct {
	net      socket.Network
	cfg      Config
	table    *demux.Table[*Socket]
	counters Counters
}

// New returns the UDP layer over n.
func New(n socket.Network, cfg Config) *Protocol {
	if cfg.RecvBufferBytes <= 0 {
		cfg.RecvBufferBytes = 256 << 10
	}
	if cfg.RecvBufferDatagrams <= 0 {
		cfg.RecvBufferDatagrams = 1024
	}
	return &Protocol{net: n, cfg: cfg, table: demux.NewTable[*Socket]()}
}

// Counters returns the protocol's counters.
func (p *Protocol) Counters() *Counters { return &p.counters }

// Sockets returns the number of open sockets.
func (p *Protocol) Sockets() int { return p.table.Len() }

// Result says what Deliver did.
type Result int

// Deliver results.
const (
	Delivered Result = iota
	NoSocket         // the caller should answer with ICMP port unreachable
	QueueFull        // dropped: the socket's receive queue is full
)

// Deliver queues payload, received from src to dst, to the socket that
// should get it. It runs on a poll loop and allocates nothing.
func (p *Protocol) Deliver(src, dst netip.AddrPort, ttl, tos uint8, payload []byte) Result {
	s, ok := p.table.Lookup(Proto, dst.Addr(), dst.Port(), src.Addr(), src.Port())
	if !ok {
		p.counters.NoPort.Add(1)
		return NoSocket
	}
	if !s.rq.Push(socket.Meta{Remote: src, Local: dst, Proto: Proto, TTL: ttl, TOS: tos}, payload, nil) {
		p.counters.RcvbufErrors.Add(1)
		return QueueFull
	}
	p.counters.Delivered.Add(1)
	s.Readable.Notify()
	return Delivered
}

// HandleError applies an ICMP error about a datagram this host sent from
// local to remote (RFC 1122 4.1.3.3): a connected socket gets the error on
// its next call, as Linux reports sk_err.
func (p *Protocol) HandleError(local, remote netip.AddrPort, icmpType, code uint8) {
	s, ok := p.table.Lookup(Proto, local.Addr(), local.Port(), remote.Addr(), remote.Port())
	if !ok {
		return
	}
	s.mu.Lock()
	connected := s.connected
	s.mu.Unlock()
	if !connected || icmpType != header.ICMPv4DestinationUnreachable {
		return
	}
	switch code {
	case header.ICMPv4PortUnreachable, header.ICMPv4ProtocolUnreachable:
		s.SetSoftError(ErrRefused)
	case header.ICMPv4HostUnreachable:
		s.SetSoftError(ErrHostUnreach)
	case header.ICMPv4NetUnreachable:
		s.SetSoftError(ErrNetUnreach)
	}
}

// Socket is a UDP socket.
type Socket struct {
	socket.Base
	p  *Protocol
	rq *socket.DatagramQueue

	mu        sync.Mutex
	key       demux.Key
	local     netip.AddrPort // bound address; its Addr may be 0.0.0.0
	remote    netip.AddrPort
	connected bool
	dontFrag  bool
}

// SetDontFragment sets the IP DF bit on the socket's datagrams (Linux's
// IP_MTU_DISCOVER = IP_PMTUDISC_DO): a datagram larger than the path MTU
// then fails with EMSGSIZE instead of being fragmented.
func (s *Socket) SetDontFragment(on bool) {
	s.mu.Lock()
	s.dontFrag = on
	s.mu.Unlock()
}

func validLocal(p *Protocol, a netip.Addr) error {
	if !a.IsValid() || a.IsUnspecified() {
		return nil
	}
	if !a.Is4() {
		return fmt.Errorf("udp: %v is not an IPv4 address: %w", a, ErrBadAddress)
	}
	if !p.net.IsLocal(a) {
		return fmt.Errorf("udp: bind %v: cannot assign requested address: %w", a, syscall.EADDRNOTAVAIL)
	}
	return nil
}

// Listen opens a socket bound to laddr (port 0: an ephemeral port; address
// 0.0.0.0 or invalid: any local address).
func (p *Protocol) Listen(laddr netip.AddrPort) (*Socket, error) {
	if err := validLocal(p, laddr.Addr()); err != nil {
		return nil, err
	}
	s := &Socket{p: p, rq: socket.NewDatagramQueue(p.cfg.RecvBufferBytes, p.cfg.RecvBufferDatagrams)}
	s.Base.Init(p.net.Clock())
	k, err := p.table.Bind(demux.Key{Proto: Proto, LocalAddr: laddr.Addr(), LocalPort: laddr.Port()}, s)
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	s.key = k
	addr := k.LocalAddr
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified()
	}
	s.local = netip.AddrPortFrom(addr, k.LocalPort)
	return s, nil
}

// Dial opens a socket bound to laddr (which may be zero) and connected to
// raddr.
func (p *Protocol) Dial(laddr, raddr netip.AddrPort) (*Socket, error) {
	s, err := p.Listen(laddr)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(raddr); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Connect sets the socket's peer: it then receives only from raddr, and
// Write sends there. The local address becomes the route's source if it was
// unspecified (Linux's ip4_datagram_connect).
func (s *Socket) Connect(raddr netip.AddrPort) error {
	if !raddr.Addr().Is4() || raddr.Port() == 0 {
		return fmt.Errorf("udp: connect %v: %w", raddr, ErrBadAddress)
	}
	if s.IsClosed() {
		return socket.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.p.net.Route(raddr.Addr(), s.key.LocalAddr)
	if err != nil {
		return fmt.Errorf("udp: connect %v: %w", raddr, err)
	}
	k, err := s.p.table.Rebind(s.key, demux.Key{Proto: Proto, LocalAddr: r.Src, LocalPort: s.key.LocalPort, RemoteAddr: raddr.Addr(), RemotePort: raddr.Port()}, s)
	if err != nil {
		return fmt.Errorf("udp: connect %v: %w", raddr, err)
	}
	s.key, s.remote, s.connected = k, raddr, true
	s.local = netip.AddrPortFrom(r.Src, k.LocalPort)
	return nil
}

// LocalAddr returns the bound address.
func (s *Socket) LocalAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// RemoteAddr returns the connected peer, or the zero AddrPort.
func (s *Socket) RemoteAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// ReadFrom receives one datagram into b (truncated if b is short, as
// recvfrom(2) without MSG_TRUNC) and returns its length and sender.
func (s *Socket) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, _, meta, err := s.ReadMeta(b)
	return n, meta.Remote, err
}

// ReadMeta is ReadFrom returning the datagram's full length and metadata
// (TTL, TOS, local address).
func (s *Socket) ReadMeta(b []byte) (n, full int, meta socket.Meta, err error) {
	for {
		if err := s.CheckRead(); err != nil {
			return 0, 0, socket.Meta{}, err
		}
		if err := s.TakeSoftError(); err != nil {
			return 0, 0, socket.Meta{}, err
		}
		n, full, meta, ok := s.rq.Pop(b)
		if ok {
			if s.rq.Len() > 0 {
				s.Readable.Notify() // for the next reader
			}
			return n, full, meta, nil
		}
		if err := s.WaitReadable(); err != nil {
			return 0, 0, socket.Meta{}, err
		}
	}
}

// Read receives from the connected peer.
func (s *Socket) Read(b []byte) (int, error) {
	n, _, err := s.ReadFrom(b)
	return n, err
}

// WriteTo sends b as one datagram to addr.
func (s *Socket) WriteTo(b []byte, addr netip.AddrPort) (int, error) {
	if err := s.CheckWrite(); err != nil {
		return 0, err
	}
	if !addr.Addr().Is4() || addr.Port() == 0 {
		return 0, fmt.Errorf("udp: send to %v: %w", addr, ErrBadAddress)
	}
	s.mu.Lock()
	local, connected, df := s.local, s.connected, s.dontFrag
	s.mu.Unlock()
	if connected {
		if err := s.TakeSoftError(); err != nil {
			return 0, err
		}
	}
	return s.send(b, local, addr, df)
}

// Write sends b to the connected peer.
func (s *Socket) Write(b []byte) (int, error) {
	if err := s.CheckWrite(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	local, remote, connected, df := s.local, s.remote, s.connected, s.dontFrag
	s.mu.Unlock()
	if !connected {
		return 0, ErrNotConnected
	}
	if err := s.TakeSoftError(); err != nil {
		return 0, err
	}
	return s.send(b, local, remote, df)
}

func (s *Socket) send(b []byte, local, to netip.AddrPort, df bool) (int, error) {
	if len(b) > MaxPayload {
		return 0, ErrMessageTooLong
	}
	var src netip.Addr
	if !local.Addr().IsUnspecified() {
		src = local.Addr()
	}
	r, err := s.p.net.Route(to.Addr(), src)
	if err != nil {
		s.p.counters.SendErrors.Add(1)
		return 0, err
	}
	if df && header.IPv4MinHeaderLen+header.UDPHeaderLen+len(b) > r.MTU {
		return 0, ErrMessageTooLong
	}
	var hdr [header.UDPHeaderLen]byte
	binary.BigEndian.PutUint16(hdr[0:2], local.Port())
	binary.BigEndian.PutUint16(hdr[2:4], to.Port())
	length := uint16(header.UDPHeaderLen + len(b))
	binary.BigEndian.PutUint16(hdr[4:6], length)
	// RFC 768: checksum over the pseudo-header, header and data; a
	// computed zero is sent as all ones.
	sum := checksum.Sum(hdr[:], checksum.PseudoHeaderSum(r.Src.As4(), to.Addr().As4(), Proto, length))
	c := checksum.Checksum(b, sum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(hdr[6:8], c)
	m := socket.Meta{Local: netip.AddrPortFrom(r.Src, local.Port()), Remote: to, Proto: Proto, TTL: header.DefaultTTL}
	if df {
		m.Flags |= socket.FlagDontFragment
	}
	if err := s.p.net.SendDatagram(&s.Base, r, m, hdr, b); err != nil {
		s.p.counters.SendErrors.Add(1)
		return 0, err
	}
	s.p.counters.Sent.Add(1)
	return len(b), nil
}

// Close closes the socket: pending and future calls fail with
// net.ErrClosed, and its port is free again. Closing twice fails.
func (s *Socket) Close() error {
	if !s.MarkClosed() {
		return socket.ErrClosed
	}
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	s.p.table.Remove(key, s)
	s.rq.Reset()
	return nil
}

// CloseAll closes every open socket, waking their blocked readers and
// writers with net.ErrClosed (the stack shutting down).
func (p *Protocol) CloseAll() {
	for _, s := range p.table.Endpoints() {
		s.Close()
	}
}

// Queued returns the datagrams waiting in the receive queue.
func (s *Socket) Queued() int { return s.rq.Len() }
