package tcp_test

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// The window an active opener advertises after the handshake fits its
// receive buffer. Before the fix, RCV.ADV kept the value computed for the
// SYN, when RCV.NXT was not yet the peer's sequence space; for about half of
// the peer's ISNs the first ACK then advertised 65535 << shift bytes (8 MiB
// with the default 6 MiB RecvBufferMax) over a 128 KiB buffer, and the peer
// (Linux) sent data the stack had to discard (TCPRcvPruned). Sixteen dials
// miss a random-ISN failure with probability 2^-16.
func TestActiveOpenWindowFitsBuffer(t *testing.T) {
	p := newPair(t, pairOpts{})
	ln, err := p.b.Listen(netip.AddrPortFrom(addrB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := range 16 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := p.a.Dial(ctx, netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Nothing was received yet, so the window is at most the initial
		// receive buffer (auto-tuning has not run).
		s := c.Snapshot()
		if adv, buf := int32(s.RcvAdv-s.RcvNxt), p.a.Config().RecvBuffer; int(adv) > buf {
			t.Fatalf("dial %d: the window advertised reaches %d bytes past RCV.NXT, the receive buffer is %d", i, adv, buf)
		}
		if err := c.CheckInvariants(); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		sc.Close()
	}
}
