//go:build linux

package linuxtest

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/tcp"
)

// BenchmarkLinuxTCPStackBulk is verinic's TCP with the Linux kernel as the
// peer, over the paths users run it on: the stack on a simulated 82599
// wired to the kernel of a private namespace by a TAP device or a veth
// (AF_PACKET), one connection carrying 32 MiB per op (so that -benchtime
// 1x, which BenchmarkLinuxTCPVethBulk's iperf3 runs want, measures a real
// transfer), reported in Gbit/s.
// LinuxToStack: nc in the namespace sends, the stack reads; StackToLinux:
// the stack writes, nc -l in the namespace reads. Run it in one go with
// BenchmarkLinuxTCPVethBulk (Linux at both ends of a veth) for the ratio
// BENCHMARKS.md reports: go test -run XXX -bench 'LinuxTCP(Stack|Veth)Bulk'.
func BenchmarkLinuxTCPStackBulk(b *testing.B) {
	requireTool(b, "nc", "netcat-openbsd")
	for i, kind := range []string{"tap", "veth"} {
		b.Run("wire="+kind, func(b *testing.B) {
			p := newTCPPeer(b, kind, 60+i, tcp.Config{}, true)
			const perOp = 32 << 20
			chunk := make([]byte, 64<<10)
			b.Run("dir=LinuxToStack", func(b *testing.B) {
				ln, err := p.tcp.Listen(netip.AddrPortFrom(p.stackIP, 5101), 0)
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				got := make(chan int64, 1)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						got <- -1
						return
					}
					defer c.Close()
					n, _ := io.Copy(io.Discard, c)
					got <- n
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				size := int64(b.N) * perOp
				cmd := p.cmdIn(ctx, "nc", "-N", "-w", "30", p.stackIP.String(), "5101")
				cmd.Stdin = io.LimitReader(zeros{}, size)
				b.SetBytes(perOp)
				b.ResetTimer()
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("nc: %v", err)
				}
				if n := <-got; n != size {
					b.Fatalf("the stack read %d of %d bytes", n, size)
				}
				b.StopTimer()
				b.ReportMetric(float64(size)*8/time.Since(start).Seconds()/1e9, "Gbit/s")
			})
			b.Run("dir=StackToLinux", func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				cmd := p.cmdIn(ctx, "nc", "-l", "-d", "-n", p.kernelIP.String(), "5102")
				counter := &countWriter{}
				cmd.Stdout = counter
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				var c *tcp.Conn
				var err error
				for try := 0; try < 50; try++ { // until nc listens
					dctx, dcancel := context.WithTimeout(ctx, time.Second)
					c, err = p.tcp.Dial(dctx, netip.AddrPort{}, netip.AddrPortFrom(p.kernelIP, 5102))
					dcancel()
					if err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					b.Fatalf("dial nc: %v", err)
				}
				b.SetBytes(perOp)
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N*perOp/len(chunk); i++ {
					if _, err := c.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
				c.CloseWrite()
				if err := cmd.Wait(); err != nil {
					b.Fatalf("nc -l: %v", err)
				}
				b.StopTimer()
				c.Close()
				if counter.n != int64(b.N)*perOp {
					b.Fatalf("nc read %d of %d bytes", counter.n, int64(b.N)*perOp)
				}
				b.ReportMetric(float64(counter.n)*8/time.Since(start).Seconds()/1e9, "Gbit/s")
			})
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
