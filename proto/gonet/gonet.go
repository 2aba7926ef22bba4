// Package gonet adapts the stack's sockets to the standard library's network
// interfaces: a UDP socket as a net.PacketConn, and when connected as a
// net.Conn, with the standard library's observable behaviour: deadlines
// (errors satisfying net.Error with Timeout() true and
// errors.Is(err, os.ErrDeadlineExceeded)), Close waking blocked calls with
// net.ErrClosed, errors wrapped in *net.OpError, short reads truncating
// datagrams, and ECONNREFUSED on a connected socket after an ICMP port
// unreachable.
//
// Besides the interfaces it offers *net.UDPConn's allocation-free
// ReadFromUDPAddrPort and WriteToUDPAddrPort.
package gonet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/udp"
)

// UDPConn is a UDP socket of the stack seen as a net.PacketConn and
// net.Conn.
type UDPConn struct {
	s     *udp.Socket
	laddr *net.UDPAddr
	raddr *net.UDPAddr // nil unless connected
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

func toAddrPort(a *net.UDPAddr) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, nil
	}
	return ipv4AddrPort(a, a.IP, a.AddrPort())
}

// ipv4AddrPort is a UDP or TCP address as the stack takes it: IPv4 (an
// IPv4-mapped IPv6 address is unmapped), an empty IP meaning any address.
func ipv4AddrPort(a net.Addr, ip net.IP, ap netip.AddrPort) (netip.AddrPort, error) {
	addr := ap.Addr().Unmap()
	if len(ip) == 0 {
		addr = netip.IPv4Unspecified()
	}
	if !addr.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%v is not an IPv4 address: %w", a, syscall.EAFNOSUPPORT)
	}
	return netip.AddrPortFrom(addr, ap.Port()), nil
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(ap)
}

// ListenUDP opens a UDP socket on st bound to laddr (nil or port 0: any
// address, ephemeral port), like net.ListenUDP.
func ListenUDP(st *stack.Stack, laddr *net.UDPAddr) (*UDPConn, error) {
	ap, err := toAddrPort(laddr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: laddr, Err: err}
	}
	s, err := st.ListenUDP(ap)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: laddr, Err: unwrapErrno(err)}
	}
	return &UDPConn{s: s, laddr: udpAddr(s.LocalAddr())}, nil
}

// DialUDP opens a UDP socket on st connected to raddr, like net.DialUDP.
func DialUDP(st *stack.Stack, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	lap, err := toAddrPort(laddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "udp", Source: laddr, Addr: raddr, Err: err}
	}
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: "udp", Source: laddr, Err: errors.New("missing address")}
	}
	rap, err := toAddrPort(raddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "udp", Source: laddr, Addr: raddr, Err: err}
	}
	s, err := st.DialUDP(lap, rap)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "udp", Source: laddr, Addr: raddr, Err: unwrapErrno(err)}
	}
	return &UDPConn{s: s, laddr: udpAddr(s.LocalAddr()), raddr: udpAddr(s.RemoteAddr())}, nil
}

// Socket returns the underlying stack socket.
func (c *UDPConn) Socket() *udp.Socket { return c.s }

// unwrapErrno keeps the standard library's sentinels and errnos visible to
// errors.Is while presenting them as the standard library does.
func unwrapErrno(err error) error {
	switch {
	case errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError(syscallName(errno), errno)
	}
	return err
}

func syscallName(e syscall.Errno) string {
	switch e {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH:
		return "recvfrom"
	case syscall.EADDRINUSE, syscall.EADDRNOTAVAIL:
		return "bind"
	}
	return "sendto"
}

func (c *UDPConn) opErr(op string, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	if addr == nil && c.raddr != nil {
		addr = c.raddr
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: unwrapErrno(err)}
}

// ReadFromUDPAddrPort reads one datagram (truncated to len(b)) and returns
// its sender. It allocates nothing.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.s.ReadFrom(b)
	if err != nil {
		return 0, netip.AddrPort{}, c.opErr("read", nil, err)
	}
	return n, from, nil
}

// ReadFromUDP is ReadFrom returning a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, udpAddr(from), nil
}

// ReadFrom implements net.PacketConn.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, udpAddr(from), nil
}

// Read implements net.Conn.
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// WriteToUDPAddrPort sends b to addr. It allocates nothing.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if c.raddr != nil {
		// As *net.UDPConn: a connected socket refuses WriteTo.
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.laddr, Addr: udpAddr(addr), Err: net.ErrWriteToConnected}
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	n, err := c.s.WriteTo(b, addr)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.laddr, Addr: udpAddr(addr), Err: unwrapErrno(err)}
	}
	return n, nil
}

// WriteToUDP sends b to addr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.laddr, Err: syscall.EINVAL}
	}
	ap, err := toAddrPort(addr)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.laddr, Addr: addr, Err: err}
	}
	return c.WriteToUDPAddrPort(b, ap)
}

// WriteTo implements net.PacketConn.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.laddr, Addr: addr, Err: syscall.EINVAL}
	}
	return c.WriteToUDP(b, ua)
}

// Write implements net.Conn: it sends to the connected peer.
func (c *UDPConn) Write(b []byte) (int, error) {
	n, err := c.s.Write(b)
	if err != nil {
		return 0, c.opErr("write", nil, err)
	}
	return n, nil
}

// Close implements net.Conn: blocked and later calls fail with
// net.ErrClosed; a second Close fails.
func (c *UDPConn) Close() error {
	if err := c.s.Close(); err != nil {
		return c.opErr("close", nil, err)
	}
	return nil
}

// LocalAddr implements net.Conn.
func (c *UDPConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr implements net.Conn; nil when not connected, as *net.UDPConn.
func (c *UDPConn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return nil
	}
	return c.raddr
}

// SetDeadline implements net.Conn.
func (c *UDPConn) SetDeadline(t time.Time) error {
	return c.opErr("set", nil, c.s.SetDeadline(t))
}

// SetReadDeadline implements net.Conn.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set", nil, c.s.SetReadDeadline(t))
}

// SetWriteDeadline implements net.Conn.
func (c *UDPConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", nil, c.s.SetWriteDeadline(t))
}
