//go:build linux

package linuxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/hostlink"
)

// Linux's own TCP as the peer baseline for verinic's TCP: two private
// network namespaces joined by a veth pair, the kernel at both ends
// (BENCHMARKS.md, "TCP"). They are benchmarks (go test -run XXX -bench
// LinuxTCPVeth ./proto/stack/linuxtest) and need root, ip(8) and, for the
// bulk figure, iperf3 (apt-get install -y iperf3); without them they skip.

// vethNetPair is two namespaces, "a" and "b", joined by the veth pair
// tva (in a, 10.9.20.1/24) – tvb (in b, 10.9.20.2/24).
type vethNetPair struct {
	a, b       *hostlink.Netns
	addrA      string
	addrB      string
	ifA, ifB   string
	congestion string
}

func benchRequireRoot(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("skipping: needs root for network namespaces and veth (CI runs these as root)")
	}
	if err := hostlink.CheckNetns(); err != nil {
		b.Skipf("skipping: %v", err)
	}
}

// newVethNetPair builds the two namespaces. With offloads false, TSO, GSO,
// GRO and transmit checksum offload are off on both ends, so that the
// kernel sends and receives one MTU-sized segment per frame and computes
// every checksum, as a stack without segmentation offload does.
func newVethNetPair(b *testing.B, offloads bool) *vethNetPair {
	benchRequireRoot(b)
	p := &vethNetPair{addrA: "10.9.20.1", addrB: "10.9.20.2", ifA: "tva", ifB: "tvb"}
	var err error
	if p.a, err = hostlink.NewNetns("verinic-tcpbench"); err != nil {
		b.Fatalf("netns: %v", err)
	}
	b.Cleanup(func() { p.a.Close() })
	if p.b, err = hostlink.NewNetns("verinic-tcpbench"); err != nil {
		b.Fatalf("netns: %v", err)
	}
	b.Cleanup(func() { p.b.Close() })
	mustIP := func(ns *hostlink.Netns, args ...string) {
		b.Helper()
		if _, err := ns.IP(args...); err != nil {
			b.Fatal(err)
		}
	}
	mustIP(p.a, "link", "add", p.ifA, "type", "veth", "peer", "name", p.ifB)
	mustIP(p.a, "link", "set", p.ifB, "netns", p.b.Name())
	mustIP(p.a, "addr", "add", p.addrA+"/24", "dev", p.ifA)
	mustIP(p.b, "addr", "add", p.addrB+"/24", "dev", p.ifB)
	mustIP(p.a, "link", "set", p.ifA, "up")
	mustIP(p.b, "link", "set", p.ifB, "up")
	if !offloads {
		if err := p.a.DisableOffloads(p.ifA); err != nil {
			b.Fatal(err)
		}
		if err := p.b.DisableOffloads(p.ifB); err != nil {
			b.Fatal(err)
		}
	}
	p.a.Do(func() error {
		cc, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
		p.congestion = strings.TrimSpace(string(cc))
		return err
	})
	return p
}

// iperf3Result is the part of iperf3 -J's report the benchmark reads.
type iperf3Result struct {
	End struct {
		SumSent struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf3Once runs one bounded iperf3 test from namespace a to a one-off
// server in namespace b and returns the receiver's rate and the sender's
// retransmissions.
func (p *vethNetPair) iperf3Once(b *testing.B, seconds int) (bitsPerSec float64, retrans int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", p.b.Name(), "iperf3", "-s", "-1", "-B", p.addrB, "-p", "5201")
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		b.Fatalf("iperf3 server: %v", err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	// Wait until the server listens (ss is in iproute2, like ip).
	for i := 0; ; i++ {
		out, _ := p.b.Exec(ctx, "ss", "-Hltn", "sport = :5201")
		if strings.Contains(string(out), p.addrB+":5201") {
			break
		}
		if i == 100 {
			b.Fatalf("iperf3 server did not listen within 5 s: %s", srvOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := p.a.Exec(ctx, "iperf3", "-c", p.addrB, "-p", "5201", "-t", fmt.Sprint(seconds), "-O", "1", "-J")
	var r iperf3Result
	if jerr := json.Unmarshal(out, &r); jerr != nil || err != nil || r.Error != "" {
		b.Fatalf("iperf3 client: %v (JSON: %v, iperf3: %q)\n%s\nserver: %s", err, jerr, r.Error, out, srvOut.String())
	}
	return r.End.SumReceived.BitsPerSecond, r.End.SumSent.Retransmits
}

// BenchmarkLinuxTCPVethBulk: iperf3, one TCP stream for 5 s (after a 1 s
// omitted warm-up) between the two namespaces, reported in Gbit/s as the
// receiver counts it. offloads=default is Linux as configured out of the
// box (veth does TSO/GSO/GRO, so segments are up to 64 KiB); offloads=off
// turns them off, one 1500-byte frame per segment, which is what a stack
// without segmentation offload (verinic and gVisor over their in-memory
// links) does. One op is one iperf3 run; ns/op is suppressed.
func BenchmarkLinuxTCPVethBulk(b *testing.B) {
	for _, offloads := range []bool{true, false} {
		name := "offloads=default"
		if !offloads {
			name = "offloads=off"
		}
		b.Run(name, func(b *testing.B) {
			if _, err := exec.LookPath("iperf3"); err != nil {
				b.Skip("skipping: iperf3 not installed (apt-get install -y iperf3)")
			}
			p := newVethNetPair(b, offloads)
			b.Logf("tcp_congestion_control %s", p.congestion)
			b.ResetTimer()
			var sum float64
			var retrans int
			for i := 0; i < b.N; i++ {
				bps, rt := p.iperf3Once(b, 5)
				sum += bps
				retrans += rt
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(sum/float64(b.N)/1e9, "Gbit/s")
			b.ReportMetric(float64(retrans)/float64(b.N), "retrans/op")
		})
	}
}

// BenchmarkLinuxTCPVethRR64: 64-byte request/response over one kernel TCP
// connection between the namespaces; one op is one round trip. The sockets
// are opened in their namespaces by this process (hostlink.Netns.Do), so
// client and server are goroutines of the test binary.
func BenchmarkLinuxTCPVethRR64(b *testing.B) {
	for _, offloads := range []bool{true, false} {
		name := "offloads=default"
		if !offloads {
			name = "offloads=off"
		}
		b.Run(name, func(b *testing.B) {
			p := newVethNetPair(b, offloads)
			var ln net.Listener
			if err := p.b.Do(func() (err error) {
				ln, err = net.Listen("tcp4", p.addrB+":7001")
				return err
			}); err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(s, buf); err != nil {
						return
					}
					if _, err := s.Write(buf); err != nil {
						return
					}
				}
			}()
			var c net.Conn
			if err := p.a.Do(func() (err error) {
				c, err = net.DialTimeout("tcp4", p.addrB+":7001", 10*time.Second)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Minute))
			req, resp := make([]byte, 64), make([]byte, 64)
			rt := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatalf("write: %v", err)
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					b.Fatalf("read: %v", err)
				}
			}
			for i := 0; i < 100; i++ {
				rt()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rt()
			}
		})
	}
}
