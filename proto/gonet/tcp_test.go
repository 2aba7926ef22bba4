package gonet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
)

// tcpEnv provides TCP of one implementation: the standard library on
// loopback, or two verinic stacks over an in-memory wire.
type tcpEnv struct {
	name       string
	listen     func(t *testing.T) net.Listener
	dial       func(addr net.Addr) (net.Conn, error)
	closedPort net.Addr
}

func stdTCPEnv() tcpEnv {
	return tcpEnv{
		name: "stdlib",
		listen: func(t *testing.T) net.Listener {
			l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
		dial: func(addr net.Addr) (net.Conn, error) {
			return net.DialTCP("tcp4", nil, addr.(*net.TCPAddr))
		},
		closedPort: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9},
	}
}

// tcpProtocols is TCP on two stacks over an in-memory wire: a at
// 10.0.0.1, b at 10.0.0.2.
type tcpProtocols struct{ a, b *tcp.Protocol }

func verinicTCPEnvProtocols(t *testing.T) tcpProtocols {
	la, lb, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := stack.New(stack.Config{}), stack.New(stack.Config{})
	ta, err := tcp.New(a, tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := tcp.New(b, tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.AddNIC(la, stack.NICConfig{})
	b.AddNIC(lb, stack.NICConfig{})
	a.AddAddress(1, netip.MustParsePrefix("10.0.0.1/24"))
	b.AddAddress(1, netip.MustParsePrefix("10.0.0.2/24"))
	a.Start()
	b.Start()
	t.Cleanup(func() { a.Close(); b.Close(); la.Close(); lb.Close() })
	return tcpProtocols{ta, tb}
}

func verinicTCPEnv(t *testing.T) tcpEnv {
	p := verinicTCPEnvProtocols(t)
	ta, tb := p.a, p.b
	return tcpEnv{
		name: "verinic",
		listen: func(t *testing.T) net.Listener {
			l, err := ListenTCP(tb, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2)})
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
		dial: func(addr net.Addr) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return DialTCP(ctx, ta, nil, addr.(*net.TCPAddr))
		},
		closedPort: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 9},
	}
}

func classifyTCP(err error) string {
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF:
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return opName(err) + "reset"
	case errors.Is(err, syscall.EPIPE):
		return opName(err) + "broken-pipe"
	}
	return classify(err)
}

func opName(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "op=" + oe.Op + " "
	}
	return ""
}

// connect returns a connected client and the server's accepted end.
func connect(t *testing.T, e tcpEnv) (net.Listener, net.Conn, net.Conn) {
	ln := e.listen(t)
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	c, err := e.dial(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.FailNow()
	}
	return ln, c, s
}

var tcpScenarios = []struct {
	name string
	run  func(t *testing.T, e tcpEnv) string
}{
	{"echo, addresses, end of stream", func(t *testing.T, e tcpEnv) string {
		ln, c, s := connect(t, e)
		defer ln.Close()
		defer c.Close()
		defer s.Close()
		c.Write([]byte("hello"))
		buf := make([]byte, 100)
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := io.ReadAtLeast(s, buf, 5)
		out := fmt.Sprintf("read %q %s", buf[:n], classifyTCP(err))
		s.Write(buf[:n])
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err = io.ReadAtLeast(c, buf, 5)
		out += fmt.Sprintf("; echo %q %s", buf[:n], classifyTCP(err))
		out += fmt.Sprintf("; addrs match %v %v; types %T", c.RemoteAddr().String() == s.LocalAddr().String(),
			s.RemoteAddr().String() == c.LocalAddr().String(), c.LocalAddr())
		s.Close()
		_, err1 := c.Read(buf)
		_, err2 := c.Read(buf)
		return out + fmt.Sprintf("; after peer close: %s, %s", classifyTCP(err1), classifyTCP(err2))
	}},
	{"half-close", func(t *testing.T, e tcpEnv) string {
		ln, c, s := connect(t, e)
		defer ln.Close()
		defer c.Close()
		defer s.Close()
		c.Write([]byte("request"))
		err0 := c.(interface{ CloseWrite() error }).CloseWrite()
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		req, err1 := io.ReadAll(s)
		s.Write([]byte("response"))
		s.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err2 := io.ReadAll(c)
		_, err3 := c.Write([]byte("more"))
		return fmt.Sprintf("closewrite %s; server read %q %s; client read %q %s; write after closewrite %s",
			classifyTCP(err0), req, classifyTCP(err1), resp, classifyTCP(err2), classifyTCP(err3))
	}},
	{"reset on close with unread data", func(t *testing.T, e tcpEnv) string {
		ln, c, s := connect(t, e)
		defer ln.Close()
		defer c.Close()
		c.Write([]byte("unread"))
		time.Sleep(50 * time.Millisecond)
		s.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 10))
		return "read after peer's close " + classifyTCP(err)
	}},
	{"deadlines", func(t *testing.T, e tcpEnv) string {
		ln, c, s := connect(t, e)
		defer ln.Close()
		defer c.Close()
		defer s.Close()
		buf := make([]byte, 10)
		c.SetReadDeadline(time.Now().Add(-time.Second))
		_, err1 := c.Read(buf)
		start := time.Now()
		c.SetReadDeadline(start.Add(50 * time.Millisecond))
		_, err2 := c.Read(buf)
		waited := time.Since(start) >= 45*time.Millisecond
		c.SetDeadline(time.Time{})
		c.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err3 := c.Write([]byte("x"))
		ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(20 * time.Millisecond))
		_, err4 := ln.Accept()
		return fmt.Sprintf("past: %s; future: %s waited=%v; write past: %s; accept: %s", classifyTCP(err1), classifyTCP(err2), waited, classifyTCP(err3), classifyTCP(err4))
	}},
	{"close wakes and ends", func(t *testing.T, e tcpEnv) string {
		ln, c, s := connect(t, e)
		defer ln.Close()
		defer s.Close()
		done := make(chan error)
		go func() {
			_, err := c.Read(make([]byte, 10))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		err1 := c.Close()
		var err2 error
		select {
		case err2 = <-done:
		case <-time.After(2 * time.Second):
			return "close did not wake the reader"
		}
		_, err3 := c.Read(make([]byte, 10))
		_, err4 := c.Write([]byte("x"))
		err5 := c.Close()
		errL := ln.Close()
		_, errA := ln.Accept()
		return fmt.Sprintf("close %s; blocked read %s; read %s; write %s; close again %s; listener close %s; accept %s",
			classifyTCP(err1), classifyTCP(err2), classifyTCP(err3), classifyTCP(err4), classifyTCP(err5), classifyTCP(errL), classifyTCP(errA))
	}},
	{"connection refused", func(t *testing.T, e tcpEnv) string {
		_, err := e.dial(e.closedPort)
		return "dial " + classifyTCP(err)
	}},
}

func TestTCPBehavesLikeStandardLibrary(t *testing.T) {
	compareTranscripts(t, [2]tcpEnv{stdTCPEnv(), verinicTCPEnv(t)}, tcpScenarios)
}
