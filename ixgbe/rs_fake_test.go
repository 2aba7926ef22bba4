package ixgbe

import (
	"github.com/verinic/verinic/advring"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

// rsPositions returns the descriptors in [from, to) whose RS bit is set.
func rsPositions(q *advring.TxQueue, from, to uint32) []uint32 {
	var got []uint32
	for i := from; i != to; i = q.Step(i) {
		if _, hi := q.Desc(i); uint32(hi)&regs.TXD_DCMD_RS != 0 {
			got = append(got, i)
		}
	}
	return got
}

// TestTxRSThresholdFake: RS on every advring.RSThresh-th data descriptor and on the
// last one of each call, also when the ring fills or a bad packet ends the
// call; reclaim frees exactly the descriptors up to a completed RS one.
func TestTxRSThresholdFake(t *testing.T) {
	f, n := newFakeNIC(t, Config{TxRingSize: 128})
	f.txHold = true
	pool, err := dma.NewMempool(n.Allocator(), dma.MempoolConfig{Buffers: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	pkts := make([]dma.Packet, 200)
	if got := pool.AllocBatch(pkts); got != len(pkts) {
		t.Fatal(got)
	}
	for i := range pkts {
		pkts[i].Len = 64
	}
	q := n.port.Tx[0]
	// 70 packets: RS at 31 and 63 (every 32nd), and 69 (the last).
	k, err := n.TxBatch(0, pkts[:70])
	if err != nil || k != 70 {
		t.Fatalf("TxBatch = %d, %v", k, err)
	}
	if got := rsPositions(q, 0, 70); len(got) != 3 || got[0] != 31 || got[1] != 63 || got[2] != 69 {
		t.Fatalf("RS on %v, want [31 63 69]", got)
	}
	// A call cut short by a bad packet: its last good descriptor has RS.
	bad := pkts[70:76]
	bad[3].Len = 0
	k, err = n.TxBatch(0, bad)
	if err != ErrBadPacket || k != 3 {
		t.Fatalf("TxBatch with a bad 4th packet = %d, %v; want 3, ErrBadPacket", k, err)
	}
	if got := rsPositions(q, 70, 73); len(got) != 1 || got[0] != 72 {
		t.Fatalf("RS on %v, want [72]", got)
	}
	bad[3].Len = 64
	// Fill the ring (127 usable): the last descriptor that fits has RS.
	k, err = n.TxBatch(0, pkts[76:])
	if err != nil || k != 127-73 {
		t.Fatalf("TxBatch into the rest of the ring = %d, %v; want %d", k, err, 127-73)
	}
	if got := rsPositions(q, 73, 127); len(got) != 2 || got[0] != 73+31 || got[1] != 126 {
		t.Fatalf("RS on %v, want [%d 126]", got, 73+31)
	}
	// Nothing completed: nothing reclaimed.
	if q.Reclaim() != 0 || pool.InUse() != len(pkts) {
		t.Fatalf("reclaimed without DD: in use %d", pool.InUse())
	}
	// DD on descriptor 31 only: 0..31 come back, and nothing past it (DD
	// on 40, which has no RS, is not looked at).
	f.tx[0].w32[4*31+3] = regs.TXD_STAT_DD // as the device writes back
	f.tx[0].w32[4*40+3] = regs.TXD_STAT_DD
	if got := q.Reclaim(); got != 32 || q.Clean() != 32 {
		t.Fatalf("reclaim after DD on 31 freed %d, clean %d; want 32, 32", got, q.Clean())
	}
	// The device completes everything: every buffer comes back.
	f.completeTx(0)
	if got := q.Reclaim(); got != 127-32 || q.Clean() != q.Next() {
		t.Fatalf("reclaim after completion freed %d, clean %d next %d", got, q.Clean(), q.Next())
	}
	if pool.InUse() != len(pkts)-127 {
		t.Fatalf("pool in use %d, want %d", pool.InUse(), len(pkts)-127)
	}
}
