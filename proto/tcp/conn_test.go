package tcp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

func dialAccept(t *testing.T, p *pair, port uint16) (client, server *tcp.Conn) {
	return dialAcceptB(t, p, port)
}

func dialAcceptB(t testing.TB, p *pair, port uint16) (client, server *tcp.Conn) {
	t.Helper()
	ln, err := p.b.Listen(netip.AddrPortFrom(addrB, port), 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acc := make(chan *tcp.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	client, err = p.a.Dial(ctx, netip.AddrPort{}, netip.AddrPortFrom(addrB, port))
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.FailNow()
	}
	return client, server
}

func TestHandshakeAndEcho(t *testing.T) {
	p := newPair(t, pairOpts{})
	c, s := dialAccept(t, p, 80)
	if c.State() != tcp.Established || s.State() != tcp.Established {
		t.Fatalf("states %v %v", c.State(), s.State())
	}
	// The echo goroutine records into the test's trace (its writes), so it
	// must be done before the trace is checked at cleanup: the client
	// closes, the echo reads EOF and returns, and the test waits for it.
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		io.Copy(s, s)
	}()
	defer func() {
		c.Close()
		select {
		case <-echoed:
		case <-time.After(10 * time.Second):
			t.Error("the echo goroutine did not end after the client closed")
		}
	}()
	msg := []byte("hello, verinic")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, msg) {
		t.Fatalf("echo %q", buf)
	}
	in := c.Info()
	if !in.SACK || !in.Timestamps || in.WScale[0] < 0 {
		t.Fatalf("options not negotiated: %+v", in)
	}
}

// transfer sends n random bytes from src to dst (src then closes its side)
// and checks the SHA-256 of what dst read to EOF.
func transfer(t *testing.T, src, dst *tcp.Conn, n int, timeout time.Duration) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(data)
	errc := make(chan error, 1)
	go func() {
		off := 0
		for off < len(data) {
			k := min(len(data)-off, 1+rng.IntN(64<<10))
			if _, err := src.Write(data[off : off+k]); err != nil {
				errc <- err
				return
			}
			off += k
		}
		errc <- src.CloseWrite()
	}()
	dst.SetReadDeadline(time.Now().Add(timeout))
	h := sha256.New()
	got, err := io.Copy(h, dst)
	if err != nil {
		t.Fatalf("read after %d of %d bytes: %v\nsender   %+v\nreceiver %+v\nsender's stack %v\nreceiver's stack %v", got, n, err,
			src.Info(), dst.Info(), nonZero(src.Protocol().Counters()), nonZero(dst.Protocol().Counters()))
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if got != int64(n) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("received %d bytes (want %d), sha256 equal: %v", got, n, bytes.Equal(h.Sum(nil), want[:]))
	}
}

func TestBulkTransfer(t *testing.T) {
	p := newPair(t, pairOpts{})
	c, s := dialAccept(t, p, 5001)
	transfer(t, c, s, 8<<20, 30*time.Second)
	transfer(t, s, c, 2<<20, 30*time.Second)
	c.Close()
	s.Close()
}

func TestConnectionRefused(t *testing.T) {
	p := newPair(t, pairOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.a.Dial(ctx, netip.AddrPort{}, netip.AddrPortFrom(addrB, 9))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	if p.b.Counters().Get(tcp.OutRsts) == 0 {
		t.Fatal("B sent no RST")
	}
}

// Bytes arrive intact and in bounded time through a wire that drops,
// reorders, duplicates and corrupts frames in both directions.
func TestTransferWithWireFaults(t *testing.T) {
	for _, loss := range []float64{0.01, 0.03, 0.05} {
		t.Run(fmtPct(loss), func(t *testing.T) {
			f := memlink.Faults{Drop: loss, Reorder: 0.02, Duplicate: 0.01, Corrupt: 0.01, Seed: uint64(loss * 1000)}
			p := newPair(t, pairOpts{ab: f, ba: f})
			c, s := dialAccept(t, p, 7)
			transfer(t, c, s, 2<<20, 60*time.Second)
			transfer(t, s, c, 512<<10, 60*time.Second)
			ca := p.a.Counters()
			t.Logf("loss %.0f%%: A retransmitted %d segments, %d timeouts, %d SACK recoveries; B: %d out-of-order segments, %d checksum errors",
				loss*100, ca.Get(tcp.RetransSegs), ca.Get(tcp.TCPTimeouts), ca.Get(tcp.TCPSACKRecovery), p.b.Counters().Get(tcp.TCPOFOQueue), p.b.Counters().Get(tcp.InCsumErrors))
			if ca.Get(tcp.RetransSegs) == 0 {
				t.Fatal("no retransmission through a lossy wire")
			}
		})
	}
}

func fmtPct(f float64) string { return strconv.Itoa(int(f*100)) + "pct" }

// A recorded transfer (both ends in one trace) passes the porcupine
// byte-stream check, and a corrupted copy of it fails.
func TestRecordedTransferIsLinearizable(t *testing.T) {
	rec := trace.NewRecorderWithData(1<<20, 64<<20)
	f := memlink.Faults{Drop: 0.02, Reorder: 0.02, Seed: 5}
	p := newPair(t, pairOpts{ab: f, ba: f, rec: rec})
	c, s := dialAccept(t, p, 7)
	transfer(t, c, s, 1<<20, 30*time.Second)
	transfer(t, s, c, 256<<10, 30*time.Second)
	c.Close()
	s.Close()
	time.Sleep(100 * time.Millisecond)
	p.sa.Close() // the loops stop recording before the trace is read
	p.sb.Close()
	ev := append([]trace.Event(nil), rec.Events()...)
	if rec.Dropped() != 0 || rec.DataDropped() != 0 {
		t.Fatalf("recorder dropped %d events, %d data bytes", rec.Dropped(), rec.DataDropped())
	}
	r := models.CheckTCPStreams(ev, time.Minute)
	if r.Violated() || r.Count(models.StreamHeld) != 2 {
		t.Fatalf("byte streams: %+v", r.Results)
	}
	t.Logf("%d events; streams held: %d", len(ev), r.Count(models.StreamHeld))
	// Flip one byte of one read: the check must fail.
	for i := range ev {
		if ev[i].Kind == trace.AppRead && len(ev[i].Data) > 10 {
			b := []byte(ev[i].Data)
			b[5] ^= 0xff
			ev[i].Data = string(b)
			break
		}
	}
	if r := models.CheckTCPStreams(ev, time.Minute); !r.Violated() {
		t.Fatal("a corrupted read passed the byte-stream check")
	}
}

func nonZero(c tcp.Counters) []tcp.Stat {
	var out []tcp.Stat
	for _, s := range c.All() {
		if s.Value != 0 {
			out = append(out, s)
		}
	}
	return out
}
