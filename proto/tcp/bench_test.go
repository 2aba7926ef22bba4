package tcp_test

import (
	"io"
	"testing"
)

// BenchmarkBulkMemlink is one connection's bulk throughput between two
// stacks over the in-memory link: b.N chunks of 64 KiB.
func BenchmarkBulkMemlink(b *testing.B) {
	p := newPair(b, pairOpts{})
	c, s := dialAcceptB(b, p, 5001)
	chunk := make([]byte, 64<<10)
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, s)
		done <- n
	}()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	if n := <-done; n != int64(b.N*len(chunk)) {
		b.Fatalf("received %d of %d", n, b.N*len(chunk))
	}
	b.StopTimer()
	c.Close()
	s.Close()
}
