package gonet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/tcp"
)

// TCPConn is a TCP connection of the stack as a net.Conn, with
// *net.TCPConn's CloseWrite, SetNoDelay and SetKeepAlive.
type TCPConn struct {
	c            *tcp.Conn
	laddr, raddr *net.TCPAddr
}

var _ net.Conn = (*TCPConn)(nil)

// TCPListener is a TCP listener of the stack as a net.Listener.
type TCPListener struct {
	l    *tcp.Listener
	addr *net.TCPAddr
}

var _ net.Listener = (*TCPListener)(nil)

func tcpAddrPort(a *net.TCPAddr) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, nil
	}
	return ipv4AddrPort(a, a.IP, a.AddrPort())
}

// tcpErr presents an error of the stack as the standard library does for
// TCP: sentinels as they are, errnos as *os.SyscallError.
func tcpErr(call string, err error) error {
	switch {
	case errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError(call, errno)
	}
	return err
}

// ListenTCP listens on laddr (nil or port 0: every address, an ephemeral
// port), like net.ListenTCP, with a backlog of 128.
func ListenTCP(p *tcp.Protocol, laddr *net.TCPAddr) (*TCPListener, error) {
	return ListenTCPBacklog(p, laddr, 0)
}

// ListenTCPBacklog is ListenTCP with a backlog (<= 0: 128).
func ListenTCPBacklog(p *tcp.Protocol, laddr *net.TCPAddr, backlog int) (*TCPListener, error) {
	ap, err := tcpAddrPort(laddr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: laddr, Err: err}
	}
	l, err := p.Listen(ap, backlog)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: laddr, Err: tcpErr("bind", err)}
	}
	return &TCPListener{l: l, addr: net.TCPAddrFromAddrPort(l.Addr())}, nil
}

// Accept waits for the next connection.
func (l *TCPListener) Accept() (net.Conn, error) { return l.AcceptTCP() }

// AcceptTCP is Accept returning a *TCPConn.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	c, err := l.l.Accept()
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: tcpErr("accept", err)}
	}
	return newTCPConn(c), nil
}

// Close stops listening.
func (l *TCPListener) Close() error {
	if err := l.l.Close(); err != nil {
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
	return nil
}

// Addr returns the listening address.
func (l *TCPListener) Addr() net.Addr { return l.addr }

// SetDeadline sets the deadline of Accept.
func (l *TCPListener) SetDeadline(t time.Time) error { return l.l.SetDeadline(t) }

// Listener returns the stack's listener.
func (l *TCPListener) Listener() *tcp.Listener { return l.l }

// DialTCP connects to raddr from laddr (nil: any), like net.DialTCP, within
// ctx.
func DialTCP(ctx context.Context, p *tcp.Protocol, laddr, raddr *net.TCPAddr) (*TCPConn, error) {
	lap, err := tcpAddrPort(laddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: laddr, Addr: raddr, Err: err}
	}
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: laddr, Err: errors.New("missing address")}
	}
	rap, err := tcpAddrPort(raddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: laddr, Addr: raddr, Err: err}
	}
	c, err := p.Dial(ctx, lap, rap)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: laddr, Addr: raddr, Err: tcpErr("connect", err)}
	}
	return newTCPConn(c), nil
}

// Dialer dials TCP through a stack; its DialContext fits
// http.Transport.DialContext.
type Dialer struct {
	Protocol *tcp.Protocol
	// LocalAddr, when set, is the local address to dial from.
	LocalAddr *net.TCPAddr
}

// DialContext dials address ("host:port", the host an IPv4 literal or a name
// the standard resolver knows) on network "tcp" or "tcp4".
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	ra, err := net.ResolveTCPAddr("tcp4", address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return DialTCP(ctx, d.Protocol, d.LocalAddr, ra)
}

func newTCPConn(c *tcp.Conn) *TCPConn {
	c.SetNoDelay(true) // as the standard library's TCPConn
	return &TCPConn{c: c, laddr: net.TCPAddrFromAddrPort(c.LocalAddr()), raddr: net.TCPAddrFromAddrPort(c.RemoteAddr())}
}

func (c *TCPConn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	call := op
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: tcpErr(call, err)}
}

// Read reads data (io.EOF after the peer's FIN).
func (c *TCPConn) Read(b []byte) (int, error) {
	n, err := c.c.Read(b)
	return n, c.opErr("read", err)
}

// Write writes all of b or fails.
func (c *TCPConn) Write(b []byte) (int, error) {
	n, err := c.c.Write(b)
	return n, c.opErr("write", err)
}

// Close closes the connection (a RST instead of a FIN when received data was
// left unread, as Linux).
func (c *TCPConn) Close() error {
	if err := c.c.Close(); err != nil {
		return &net.OpError{Op: "close", Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: net.ErrClosed}
	}
	return nil
}

// CloseWrite shuts down the sending side (a FIN after the queued data).
func (c *TCPConn) CloseWrite() error { return c.opErr("close", c.c.CloseWrite()) }

// LocalAddr returns the local address.
func (c *TCPConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the remote address.
func (c *TCPConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both deadlines.
func (c *TCPConn) SetDeadline(t time.Time) error { return c.opErr("set", c.c.SetDeadline(t)) }

// SetReadDeadline sets the read deadline.
func (c *TCPConn) SetReadDeadline(t time.Time) error { return c.opErr("set", c.c.SetReadDeadline(t)) }

// SetWriteDeadline sets the write deadline.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", c.c.SetWriteDeadline(t))
}

// SetNoDelay turns Nagle's algorithm off (true, the standard library's
// default for TCPConn) or on.
func (c *TCPConn) SetNoDelay(noDelay bool) error { c.c.SetNoDelay(noDelay); return nil }

// SetKeepAlive turns keepalive probes on or off.
func (c *TCPConn) SetKeepAlive(on bool) error { c.c.SetKeepAlive(on); return nil }

// Conn returns the stack's connection (for Info).
func (c *TCPConn) Conn() *tcp.Conn { return c.c }
