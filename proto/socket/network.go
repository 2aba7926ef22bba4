package socket

import (
	"net/netip"

	"github.com/verinic/verinic/proto/clock"
)

// Route is what a socket learns about the path to a destination.
type Route struct {
	NIC     int        // outgoing interface
	Src     netip.Addr // source address to use
	NextHop netip.Addr // gateway, or the destination on a connected network
	MTU     int        // path MTU
}

// Network is the network layer as transport sockets see it. The stack
// implements it; it is an interface so that the transport packages sit
// below the stack in the import graph.
type Network interface {
	// Clock is the stack's time source (deadlines use it).
	Clock() clock.Clock
	// Route picks the route and source address for dst; a valid src asks
	// for that source (which must be local).
	Route(dst, src netip.Addr) (Route, error)
	// IsLocal reports whether a is an address of one of the interfaces.
	IsLocal(a netip.Addr) bool
	// SendDatagram hands an IP payload to the poll loop of the route's
	// interface for transmission: an 8-byte transport header l4 followed by
	// payload, from m.Local to m.Remote with protocol m.Proto. It copies
	// the data; when the hand-off queue is full it waits, within b's write
	// deadline and until b is closed. It allocates nothing.
	SendDatagram(b *Base, r Route, m Meta, l4 [8]byte, payload []byte) error
}
