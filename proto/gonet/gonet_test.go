package gonet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/stack"
)

// env provides sockets of one implementation: the standard library on
// loopback, or two verinic stacks over an in-memory wire.
type env struct {
	name       string
	listen     func(t *testing.T) net.PacketConn
	dial       func(t *testing.T, raddr net.Addr) net.Conn
	closedPort func(t *testing.T) net.Addr
}

func stdEnv() env {
	return env{
		name: "stdlib",
		listen: func(t *testing.T) net.PacketConn {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		dial: func(t *testing.T, raddr net.Addr) net.Conn {
			c, err := net.DialUDP("udp4", nil, raddr.(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		closedPort: func(t *testing.T) net.Addr {
			c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			a := c.LocalAddr()
			c.Close()
			return a
		},
	}
}

func verinicEnv(t *testing.T) env {
	la, lb, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := stack.New(stack.Config{}), stack.New(stack.Config{})
	a.AddNIC(la, stack.NICConfig{})
	b.AddNIC(lb, stack.NICConfig{})
	a.AddAddress(1, netip.MustParsePrefix("10.0.0.1/24"))
	b.AddAddress(1, netip.MustParsePrefix("10.0.0.2/24"))
	a.Start()
	b.Start()
	t.Cleanup(func() { a.Close(); b.Close(); la.Close(); lb.Close() })
	return env{
		name: "verinic",
		listen: func(t *testing.T) net.PacketConn {
			c, err := ListenUDP(b, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		dial: func(t *testing.T, raddr net.Addr) net.Conn {
			c, err := DialUDP(a, nil, raddr.(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		closedPort: func(t *testing.T) net.Addr { return &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 9} },
	}
}

// classify reduces an error to what a caller of package net can observe.
func classify(err error) string {
	if err == nil {
		return "ok"
	}
	var ne net.Error
	var oe *net.OpError
	s := ""
	if errors.As(err, &oe) {
		s += "op=" + oe.Op + " "
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout():
		return s + "timeout"
	case errors.Is(err, net.ErrClosed):
		return s + "closed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return s + "refused"
	case errors.Is(err, syscall.EMSGSIZE):
		return s + "msgsize"
	case errors.Is(err, net.ErrWriteToConnected):
		return s + "write-to-connected"
	case errors.Is(err, syscall.EINVAL):
		return s + "einval"
	}
	return s + "other: " + err.Error()
}

// scenarios return a transcript of what they observed; the transcripts of
// both implementations must be equal.
var scenarios = []struct {
	name string
	run  func(t *testing.T, e env) string
}{
	{"echo and addresses", func(t *testing.T, e env) string {
		srv := e.listen(t)
		defer srv.Close()
		cli := e.dial(t, srv.LocalAddr())
		defer cli.Close()
		cli.Write([]byte("hello"))
		buf := make([]byte, 100)
		srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := srv.ReadFrom(buf)
		out := fmt.Sprintf("read %d %q %s from-is-client=%v", n, buf[:n], classify(err), from != nil && from.String() == cli.LocalAddr().String())
		srv.WriteTo(buf[:n], from)
		cli.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err = cli.Read(buf)
		out += fmt.Sprintf("; echo %q %s; remote-nil=%v; conn-remote=%v", buf[:n], classify(err), srv.(interface{ RemoteAddr() net.Addr }).RemoteAddr() == nil, cli.RemoteAddr().String() == srv.LocalAddr().String())
		out += fmt.Sprintf("; local %T", srv.LocalAddr())
		return out
	}},
	{"truncation and empty datagrams", func(t *testing.T, e env) string {
		srv := e.listen(t)
		defer srv.Close()
		cli := e.dial(t, srv.LocalAddr())
		defer cli.Close()
		cli.Write(bytes.Repeat([]byte("x"), 100))
		cli.Write(nil)
		buf := make([]byte, 10)
		srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		n1, _, err1 := srv.ReadFrom(buf)
		n2, _, err2 := srv.ReadFrom(buf)
		srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _, err3 := srv.ReadFrom(buf)
		return fmt.Sprintf("%d %s, %d %s, then %s", n1, classify(err1), n2, classify(err2), classify(err3))
	}},
	{"deadlines", func(t *testing.T, e env) string {
		srv := e.listen(t)
		defer srv.Close()
		buf := make([]byte, 10)
		srv.SetReadDeadline(time.Now().Add(-time.Second))
		_, _, err1 := srv.ReadFrom(buf)
		start := time.Now()
		srv.SetReadDeadline(start.Add(50 * time.Millisecond))
		_, _, err2 := srv.ReadFrom(buf)
		waited := time.Since(start) >= 45*time.Millisecond
		// Extending the deadline while a read is blocked applies to it.
		srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		go func() {
			time.Sleep(10 * time.Millisecond)
			srv.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		}()
		start = time.Now()
		_, _, err3 := srv.ReadFrom(buf)
		extended := time.Since(start) >= 100*time.Millisecond
		srv.SetDeadline(time.Time{})
		srv.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err4 := srv.WriteTo([]byte("x"), srv.LocalAddr())
		return fmt.Sprintf("past: %s; future: %s waited=%v; extended: %s waited=%v; write past: %s", classify(err1), classify(err2), waited, classify(err3), extended, classify(err4))
	}},
	{"close", func(t *testing.T, e env) string {
		srv := e.listen(t)
		done := make(chan error)
		go func() {
			_, _, err := srv.ReadFrom(make([]byte, 10))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		err1 := srv.Close()
		var err2 error
		select {
		case err2 = <-done:
		case <-time.After(2 * time.Second):
			return "close did not wake the reader"
		}
		_, _, err3 := srv.ReadFrom(make([]byte, 10))
		_, err4 := srv.WriteTo([]byte("x"), srv.LocalAddr())
		err5 := srv.Close()
		err6 := srv.SetDeadline(time.Now())
		return fmt.Sprintf("close %s; blocked read %s; read %s; write %s; close again %s; set deadline %s", classify(err1), classify(err2), classify(err3), classify(err4), classify(err5), classify(err6))
	}},
	{"connection refused", func(t *testing.T, e env) string {
		cli := e.dial(t, e.closedPort(t))
		defer cli.Close()
		cli.Write([]byte("anyone?"))
		cli.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := cli.Read(make([]byte, 10))
		cli.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err2 := cli.Read(make([]byte, 10))
		return classify(err) + "; then " + classify(err2)
	}},
	{"misuse", func(t *testing.T, e env) string {
		srv := e.listen(t)
		defer srv.Close()
		cli := e.dial(t, srv.LocalAddr())
		defer cli.Close()
		_, err1 := cli.(net.PacketConn).WriteTo([]byte("x"), srv.LocalAddr())
		_, err2 := srv.WriteTo(make([]byte, 65508), cli.LocalAddr())
		_, err3 := srv.WriteTo([]byte("x"), &net.IPAddr{IP: net.IPv4(1, 2, 3, 4)})
		return fmt.Sprintf("writeto connected: %s; too long: %s; wrong addr type: %s", classify(err1), classify(err2), classify(err3))
	}},
}

func TestBehavesLikeStandardLibrary(t *testing.T) {
	compareTranscripts(t, [2]env{stdEnv(), verinicEnv(t)}, scenarios)
}

// compareTranscripts runs each scenario in the standard library's
// environment and in verinic's; the transcripts must be equal.
func compareTranscripts[E any](t *testing.T, envs [2]E, scs []struct {
	name string
	run  func(t *testing.T, e E) string
}) {
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			var got [2]string
			for i, e := range envs {
				got[i] = sc.run(t, e)
			}
			if got[0] != got[1] {
				t.Errorf("behaviour differs:\n  stdlib:  %s\n  verinic: %s", got[0], got[1])
			} else {
				t.Logf("both: %s", got[0])
			}
		})
	}
}
