package stack

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/link/memlink"
)

// benchPair is two running stacks with busy-polling loops, over simulated
// 82599s (sim) or the in-memory link.
func benchPair(b *testing.B, sim bool) (*Stack, *Stack) {
	cfg := Config{IdleSleep: -1}
	if sim {
		p := newSimPair(b, nil, nil, cfg)
		return p.a, p.b
	}
	p := newPair(b, false, memlink.Faults{}, memlink.Faults{}, cfg)
	return p.a, p.b
}

// udpEcho measures UDP echo throughput: the client keeps window datagrams
// of size bytes in flight to an echo server on the other stack.
func udpEcho(b *testing.B, sim bool, size, window int) {
	a, bs := benchPair(b, sim)
	udpEchoOn(b, a, bs, size, window)
}

// udpEchoOn is udpEcho between two running stacks.
func udpEchoOn(b *testing.B, a, bs *Stack, size, window int) {
	srv, _ := bs.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], from)
		}
	}()
	cli, _ := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
	defer cli.Close()
	msg := make([]byte, size)
	buf := make([]byte, 65536)
	// Warm up ARP.
	cli.Write(msg)
	cli.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := cli.Read(buf); err != nil {
		b.Fatalf("warm-up echo: %v", err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent, got, lost := 0, 0, 0
	for sent < window && sent < b.N {
		cli.Write(msg)
		sent++
	}
	for got+lost < b.N {
		if (got+lost)%1024 == 0 {
			// Renewed rarely: setting a deadline allocates a timer.
			cli.SetReadDeadline(time.Now().Add(time.Second))
		}
		if _, err := cli.Read(buf); err != nil {
			cli.SetReadDeadline(time.Now().Add(time.Second))
			lost += sent - got - lost // the window drained: count the rest lost
			for sent < b.N && sent-got-lost < window {
				cli.Write(msg)
				sent++
			}
			continue
		}
		got++
		if sent < b.N {
			cli.Write(msg)
			sent++
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got)/el.Seconds(), "echoes/s")
	if lost > 0 {
		b.ReportMetric(float64(lost), "lost")
	}
}

// pingRTT measures ICMP echo round-trip time, one request at a time.
func pingRTT(b *testing.B, sim bool) {
	a, _ := benchPair(b, sim)
	pingRTTFrom(b, a)
}

// pingRTTFrom pings addrB from stack a, one request at a time.
func pingRTTFrom(b *testing.B, a *Stack) {
	echo, _ := a.NewEcho(0)
	defer echo.Close()
	data := make([]byte, 56)
	buf := make([]byte, 1500)
	echo.Send(addrB, 0, data)
	echo.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := echo.Recv(buf); err != nil {
		b.Fatalf("warm-up ping: %v", err)
	}
	echo.SetReadDeadline(time.Time{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		echo.Send(addrB, uint16(i+1), data)
		for {
			_, r, err := echo.Recv(buf)
			if err != nil {
				b.Fatal(err)
			}
			if r.Seq == uint16(i+1) {
				break
			}
		}
	}
}

func BenchmarkUDPEchoSim64(b *testing.B)    { udpEcho(b, true, 64, 32) }
func BenchmarkUDPEchoSim1472(b *testing.B)  { udpEcho(b, true, 1472, 32) }
func BenchmarkUDPEchoMem64(b *testing.B)    { udpEcho(b, false, 64, 32) }
func BenchmarkUDPEchoSimRTT64(b *testing.B) { udpEcho(b, true, 64, 1) }
func BenchmarkPingRTTSim(b *testing.B)      { pingRTT(b, true) }
func BenchmarkPingRTTMem(b *testing.B)      { pingRTT(b, false) }

// BenchmarkUDPEchoKernelLoopback64 is the anchor: the same windowed echo
// through the Linux kernel's UDP over loopback, in the same run.
func BenchmarkUDPEchoKernelLoopback64(b *testing.B) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	cli, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	msg, buf := make([]byte, 64), make([]byte, 65536)
	const window = 32
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent, got, lost := 0, 0, 0
	for sent < window && sent < b.N {
		cli.Write(msg)
		sent++
	}
	for got+lost < b.N {
		if (got+lost)%1024 == 0 {
			cli.SetReadDeadline(time.Now().Add(time.Second))
		}
		if _, err := cli.Read(buf); err != nil {
			cli.SetReadDeadline(time.Now().Add(time.Second))
			lost += sent - got - lost
			for sent < b.N && sent-got-lost < window {
				cli.Write(msg)
				sent++
			}
			continue
		}
		got++
		if sent < b.N {
			cli.Write(msg)
			sent++
		}
	}
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "echoes/s")
	if lost > 0 {
		b.ReportMetric(float64(lost), "lost")
	}
}
