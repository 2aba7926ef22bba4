package bench

import (
	"context"
	"net"
	"testing"
)

// The Linux kernel's TCP over loopback, the anchor of the same run (the
// kernel between two network namespaces over veth, which needs root, is
// proto/stack/linuxtest's BenchmarkLinuxTCPVeth…).

func newKernelPair(b *testing.B) *tcpPair {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	var d net.Dialer
	return &tcpPair{
		ln: ln,
		dial: func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", ln.Addr().String())
		},
	}
}

func BenchmarkKernelTCPBulk(b *testing.B)       { benchBulk(b, newKernelPair(b)) }
func BenchmarkKernelTCPRR64(b *testing.B)       { benchRR64(b, newKernelPair(b)) }
func BenchmarkKernelTCPConnPerSec(b *testing.B) { benchConnPerSec(b, newKernelPair(b)) }
