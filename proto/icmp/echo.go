// Package icmp implements the parts of ICMP (RFC 792) that are sockets or
// policy: echo sockets for the ping API (demultiplexed by echo identifier,
// like Linux's ping sockets), and the rate limiter that decides whether the
// stack may send an error (Linux's icmp_ratelimit semantics). The stack
// answers echo requests and generates errors itself, on its poll loops.
package icmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/verinic/verinic/proto/checksum"
	"github.com/verinic/verinic/proto/demux"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/socket"
)

// Proto is ICMP's IP protocol number.
const Proto = header.IPProtocolICMP

// MaxEchoData is the largest echo payload over IPv4: 65535 - 20 - 8.
const MaxEchoData = 65507

// Protocol is the ICMP socket layer of one stack.
type Protocol struct {
	net   socket.Network
	table *demux.Table[*EchoSocket]
	// Counters.
	RepliesDelivered, RepliesUnmatched, RepliesDropped atomic.Uint64
}

// New returns the ICMP socket layer over n.
func New(n socket.Network) *Protocol {
	return &Protocol{net: n, table: demux.NewTable[*EchoSocket]()}
}

// EchoSocket sends echo requests and receives the matching replies.
type EchoSocket struct {
	socket.Base
	p     *Protocol
	key   demux.Key
	ident uint16
	rq    *socket.DatagramQueue
}

// NewEcho opens an echo socket with a free identifier (ident 0 picks one).
func (p *Protocol) NewEcho(ident uint16) (*EchoSocket, error) {
	s := &EchoSocket{p: p, rq: socket.NewDatagramQueue(1<<20, 1024)}
	s.Base.Init(p.net.Clock())
	k, err := p.table.Bind(demux.Key{Proto: Proto, LocalPort: ident}, s)
	if err != nil {
		return nil, fmt.Errorf("icmp: echo identifier %d: %w", ident, err)
	}
	s.key, s.ident = k, k.LocalPort
	return s, nil
}

// Ident returns the socket's echo identifier.
func (s *EchoSocket) Ident() uint16 { return s.ident }

// DeliverReply queues an echo reply's data to the socket with its
// identifier. It runs on a poll loop.
func (p *Protocol) DeliverReply(from, to netip.Addr, ttl uint8, ident, seq uint16, data []byte) bool {
	s, ok := p.table.Lookup(Proto, to, ident, from, 0)
	if !ok {
		p.RepliesUnmatched.Add(1)
		return false
	}
	if !s.rq.Push(socket.Meta{Remote: netip.AddrPortFrom(from, 0), Local: netip.AddrPortFrom(to, 0), Proto: Proto, TTL: ttl, Seq: uint32(seq)}, data, nil) {
		p.RepliesDropped.Add(1)
		return false
	}
	p.RepliesDelivered.Add(1)
	s.Readable.Notify()
	return true
}

// Send sends an echo request with sequence number seq and data to dst.
func (s *EchoSocket) Send(dst netip.Addr, seq uint16, data []byte) error {
	if err := s.CheckWrite(); err != nil {
		return err
	}
	if len(data) > MaxEchoData {
		return fmt.Errorf("icmp: %d bytes of echo data: message too long (max %d)", len(data), MaxEchoData)
	}
	r, err := s.p.net.Route(dst, netip.Addr{})
	if err != nil {
		return err
	}
	var hdr [header.ICMPv4HeaderLen]byte
	hdr[0] = header.ICMPv4Echo
	binary.BigEndian.PutUint16(hdr[4:6], s.ident)
	binary.BigEndian.PutUint16(hdr[6:8], seq)
	binary.BigEndian.PutUint16(hdr[2:4], checksum.Checksum(data, checksum.Sum(hdr[:], 0)))
	m := socket.Meta{Local: netip.AddrPortFrom(r.Src, 0), Remote: netip.AddrPortFrom(dst, 0), Proto: Proto, TTL: header.DefaultTTL}
	return s.p.net.SendDatagram(&s.Base, r, m, hdr, data)
}

// Reply is a received echo reply.
type Reply struct {
	From netip.Addr
	Seq  uint16
	TTL  uint8
	Len  int // data length (may exceed what was copied)
}

// Recv waits for an echo reply and copies its data into b.
func (s *EchoSocket) Recv(b []byte) (int, Reply, error) {
	for {
		if err := s.CheckRead(); err != nil {
			return 0, Reply{}, err
		}
		n, full, meta, ok := s.rq.Pop(b)
		if ok {
			if s.rq.Len() > 0 {
				s.Readable.Notify()
			}
			return n, Reply{From: meta.Remote.Addr(), Seq: uint16(meta.Seq), TTL: meta.TTL, Len: full}, nil
		}
		if err := s.WaitReadable(); err != nil {
			return 0, Reply{}, err
		}
	}
}

// Queued returns the replies waiting to be received.
func (s *EchoSocket) Queued() int { return s.rq.Len() }

// Close closes the socket.
func (s *EchoSocket) Close() error {
	if !s.MarkClosed() {
		return socket.ErrClosed
	}
	s.p.table.Remove(s.key, s)
	s.rq.Reset()
	return nil
}
