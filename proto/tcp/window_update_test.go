package tcp_test

import (
	"testing"
	"time"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/proto/tcp"
)

// RFC 9293 3.10.7.4 fifth (SND.WND counts from SND.UNA) with Linux's window
// update rule (tcp_may_update_window): a segment that acknowledges new data
// brings its window along even when its sequence number is below SND.WL1.
// The case, seen against Linux (proto/stack/linuxtest, a stack client
// receiving a bulk echo): out-of-order segments from the peer set SND.WL1
// high; the peer's retransmission that fills the hole has a lower sequence
// number and carries the newest ACK and window. Applying its ACK but not its
// window moved the usable window's right edge (SND.UNA + SND.WND) past the
// edge the peer offered, and new data went beyond the peer's window.
func TestWindowUpdateFromHoleFillingAck(t *testing.T) {
	o := delayPaths(5 * time.Millisecond)
	o.TCP = tcp.Config{DisableWindowScaling: true, DisableTimestamps: true}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	cli.SetNoDelay(true)
	b.run(100 * time.Millisecond)
	// From now on B's own segments are lost; the test speaks for B.
	b.s.B.Link.SetPath(netsim.Path{Loss: 1})
	local, remote := cli.LocalAddr(), cli.RemoteAddr()
	bseq := uint32(srv.Snapshot().SndNxt)
	una := uint32(cli.Snapshot().SndNxt)
	b.toA(remote, local, fA, bseq, una, 6000, nil, nil) // the edge B offers: una+6000

	// A sends 4000 bytes; B acknowledges none of them yet.
	b.writeAll(cli, make([]byte, 4000))
	b.run(0)
	// B's data: a segment after a hole (SND.WL1 := bseq+1000), old ACK.
	b.toA(remote, local, fA, bseq+1000, una, 6000, nil, make([]byte, 100))
	// The retransmission filling the hole: below SND.WL1, acknowledges
	// 2000 bytes, the same right edge (una+2000 + 4000).
	b.toA(remote, local, fA, bseq, una+2000, 4000, nil, make([]byte, 1000))
	if w := cli.Info().SndWnd; w != 4000 {
		t.Errorf("SND.WND %d after the hole-filling ACK, want its window 4000", w)
	}
	m := b.mark()
	b.writeAll(cli, make([]byte, 20000))
	b.run(0)
	for _, g := range b.dataSegs(m, 'A') {
		if end := g.seq + uint32(g.payload); int32(end-(una+6000)) > 0 {
			t.Fatalf("A sent %v, %d bytes past the right edge B offered (una+6000)", g, int32(end-(una+6000)))
		}
	}
}
