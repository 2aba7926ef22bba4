package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair is two TCP endpoints of one stack implementation, ready to talk:
// a listener on one side and a dialer to it on the other.
type tcpPair struct {
	ln   net.Listener
	dial func(ctx context.Context) (net.Conn, error)
}

const (
	bulkChunk = 64 << 10 // bytes written per benchmark iteration
	bulkWarm  = 4 << 20  // bytes sent before the timer starts (opens the window)
	rrSize    = 64
	// wireQueue is how many frames each direction of an in-memory link
	// holds before dropping: gVisor's channel endpoint queue and memlink's
	// WireFrames are both set to it.
	wireQueue = 4096
	deadline  = time.Minute // a stuck connection fails the benchmark instead of hanging it
)

// connect dials p and returns the client end and the accepted server end.
func connect(b *testing.B, p *tcpPair) (client, server net.Conn) {
	b.Helper()
	type accepted struct {
		c   net.Conn
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		c, err := p.ln.Accept()
		ac <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.dial(ctx)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	a := <-ac
	if a.err != nil {
		c.Close()
		b.Fatalf("accept: %v", a.err)
	}
	dl := time.Now().Add(deadline)
	c.SetDeadline(dl)
	a.c.SetDeadline(dl)
	b.Cleanup(func() { c.Close(); a.c.Close() })
	return c, a.c
}

// benchBulk sends b.N chunks of 64 KiB from client to server over one
// connection. The timer covers the writes and the server's reading of the
// last byte (it answers with one byte when it has everything). It reports
// MB/s (b.SetBytes) and Gbit/s of application data.
func benchBulk(b *testing.B, p *tcpPair) {
	c, s := connect(b, p)
	total := int64(bulkWarm) + int64(b.N)*bulkChunk
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var got int64
		for got < total {
			want := int64(len(buf))
			if got < bulkWarm && got+want > bulkWarm {
				want = bulkWarm - got
			} else if got+want > total {
				want = total - got
			}
			n, err := s.Read(buf[:want])
			got += int64(n)
			if err != nil {
				errc <- err
				return
			}
			if got == bulkWarm || got == total {
				if _, err := s.Write(buf[:1]); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- nil
	}()
	buf := make([]byte, bulkChunk)
	one := make([]byte, 1)
	for sent := 0; sent < bulkWarm; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			b.Fatalf("warm-up write: %v", err)
		}
	}
	if _, err := io.ReadFull(c, one); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.SetBytes(bulkChunk)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatalf("write: %v", err)
		}
	}
	if _, err := io.ReadFull(c, one); err != nil {
		b.Fatalf("waiting for the receiver: %v", err)
	}
	el := time.Since(start)
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatalf("receiver: %v", err)
	}
	b.ReportMetric(float64(b.N)*bulkChunk*8/el.Seconds()/1e9, "Gbit/s")
}

// benchRR64 measures request/response latency: the client writes 64 bytes,
// the server reads them and writes 64 bytes back; one op is one round trip.
func benchRR64(b *testing.B, p *tcpPair) {
	c, s := connect(b, p)
	go func() {
		buf := make([]byte, rrSize)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	req, resp := make([]byte, rrSize), make([]byte, rrSize)
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
}

// benchConnPerSec measures connection set-up and tear-down, HTTP/1.0
// style: per op the client dials and writes one byte; the server accepts,
// reads it, answers with one byte and closes (the active close, so TIME_WAIT
// is on the server and the client's ephemeral ports are free again once
// the connection is closed); the client reads the answer, then EOF, and
// closes. The timer stops when every server-side handler has finished.
func benchConnPerSec(b *testing.B, p *tcpPair) {
	var wg sync.WaitGroup
	var errOnce sync.Once
	var serverErr error
	fail := func(err error) { errOnce.Do(func() { serverErr = err }) }
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(deadline))
				buf := make([]byte, 1)
				if _, err := io.ReadFull(c, buf); err != nil {
					fail(err)
					return
				}
				if _, err := c.Write(buf); err != nil {
					fail(err)
				}
			}()
		}
	}()
	one := make([]byte, 1)
	conn := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := p.dial(ctx)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(one); err != nil {
			b.Fatalf("write: %v", err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatalf("read: %v", err)
		}
		if n, err := c.Read(one); n != 0 || !errors.Is(err, io.EOF) {
			b.Fatalf("want EOF after the server's close, got %d bytes, %v", n, err)
		}
		if err := c.Close(); err != nil {
			b.Fatalf("close: %v", err)
		}
	}
	conn() // warm up (ARP, first endpoint allocations)
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		conn()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	p.ln.Close()
	<-acceptDone
	if serverErr != nil {
		b.Fatal(serverErr)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "conns/s")
}
