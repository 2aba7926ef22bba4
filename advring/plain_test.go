package advring

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// TestPlainLoopsMatchTraced: receive and fill run their written-out loops
// (receivePlain, fillPlain) only on queues without a trace recorder, in
// builds without injectable bugs; queues with a recorder run the general
// loops alone. Two rigs get the same mixed traffic (drops, frames spanning
// descriptors, impossible lengths, an exhausted pool, bad and long tagged
// frames, offload requests the driver refuses, a full ring, partial
// completions), one with a recorder and one without, and must agree after
// every call: results, packets handed up, every descriptor word, ring
// indices, RS bookkeeping, tails, counters and the pools.
func TestPlainLoopsMatchTraced(t *testing.T) {
	const size = 64
	plain, traced := newRig(t, size), newRig(t, size)
	rec := trace.NewRecorder(1 << 20)
	traced.rx.trace, traced.tx.trace = rec, rec
	rigs := []*rig{plain, traced}
	rng := rand.New(rand.NewPCG(10, 45))
	devNext := uint32(0) // the next RX descriptor the "device" writes back
	pkts := [2][]dma.Packet{make([]dma.Packet, 48), make([]dma.Packet, 48)}
	held := [2][]dma.Packet{make([]dma.Packet, 4*size), make([]dma.Packet, 4*size)}
	nheld := 0
	for round := 0; round < 3000; round++ {
		// Now and then take most of the pool away (RX refills then fail)
		// or give it back.
		if round%50 == 10 {
			leave := rng.IntN(8)
			for i, r := range rigs {
				nheld = r.pool.AllocBatch(held[i][:r.pool.Available()-leave])
			}
		} else if round%50 == 20 && nheld > 0 {
			for i, r := range rigs {
				if err := r.pool.FreeBatch(held[i][:nheld]); err != nil {
					t.Fatal(err)
				}
			}
			nheld = 0
		}
		// The device writes back some of the descriptors it owns,
		// [devNext, RDT).
		rdt := plain.dev.reg[0xC058/4]
		own := plain.rx.ring.dist(devNext, rdt)
		for n := rng.IntN(int(own) + 1); n > 0; n-- {
			status, length := uint32(RxStatDD|RxStatEOP), uint32(60+rng.IntN(1455))
			switch rng.IntN(20) {
			case 0:
				status |= 1 << 31 // RXE (testFamily): dropped
			case 1:
				status &^= RxStatEOP // spans descriptors
			case 2:
				length = 4000 // longer than the buffer: dropped
			case 3:
				status |= 1<<6 | 1<<5 | 1<<30 // IPCS, L4CS, IPE
			}
			for _, r := range rigs {
				r.writeBack(devNext, status, length)
			}
			devNext = plain.rx.ring.next(devNext)
		}
		batch := 1 + rng.IntN(len(pkts[0]))
		var got [2]int
		for i, r := range rigs {
			k, err := r.port.RxBatch(1, pkts[i][:batch])
			if err != nil {
				t.Fatalf("round %d: RxBatch: %v", round, err)
			}
			got[i] = k
		}
		if got[0] != got[1] {
			t.Fatalf("round %d: RxBatch = %d without a trace, %d with", round, got[0], got[1])
		}
		k := got[0]
		for j := 0; j < k; j++ {
			pa, pb := pkts[0][j], pkts[1][j]
			if pa.Pool != plain.pool || pb.Pool != traced.pool || pa.Index != pb.Index || pa.Off != pb.Off || pa.Len != pb.Len || pa.Meta != pb.Meta {
				t.Fatalf("round %d: packet %d handed up: %+v without a trace, %+v with", round, j, pa, pb)
			}
		}
		// Send what came in, and some fresh buffers, some of them made
		// bad, long and tagged, or asking for an offload.
		extra := 0
		if rng.IntN(3) == 0 {
			extra = min(rng.IntN(16), len(pkts[0])-k)
		}
		for i, r := range rigs {
			extra = r.pool.AllocBatch(pkts[i][k : k+extra])
		}
		n := k + extra
		for j := 0; j < n; j++ {
			var lenSet uint16
			var meta dma.Meta
			tagged := false
			switch rng.IntN(40) {
			case 0:
				lenSet = MinTxFrame - 1
			case 1:
				lenSet, tagged = 1518, true
			case 2:
				meta = dma.TxIPCsum
			case 3:
				lenSet = 1600 // too long, untagged
			}
			for i := range rigs {
				p := &pkts[i][j]
				if j >= k {
					p.Len = 60
				}
				if lenSet != 0 {
					p.Len = lenSet
				}
				p.Meta = meta
				if d := p.Room(); len(d) > 14 {
					d[12], d[13] = 0, 0
					if tagged {
						d[12] = 0x81
					}
				}
			}
		}
		var sent [2]int
		var errs [2]error
		for i, r := range rigs {
			sent[i], errs[i] = r.port.TxBatch(1, pkts[i][:n])
			if sent[i] < n {
				_ = r.pool.FreeBatch(pkts[i][sent[i]:n])
			}
		}
		if sent[0] != sent[1] || errs[0] != errs[1] {
			t.Fatalf("round %d: TxBatch = %d, %v without a trace, %d, %v with", round, sent[0], errs[0], sent[1], errs[1])
		}
		// The device completes, in order, some of the RS descriptors in
		// flight.
		if rng.IntN(3) != 0 {
			for i := plain.tx.Clean(); i != plain.tx.Next() && rng.IntN(8) != 0; i = plain.tx.Step(i) {
				if _, hi := plain.tx.Desc(i); uint32(hi)&TxCmdRS != 0 {
					for _, r := range rigs {
						atomic.StoreUint32(&r.tx.ring.w32[4*i+3], TxStatDD)
					}
				}
			}
		}
		comparePlainTraced(t, round, plain, traced)
	}
	if len(rec.Events()) == 0 {
		t.Fatal("the traced rig recorded nothing")
	}
	if st := plain.rx.Stats(); st.AllocFailures == 0 || st.ErrorDrops == 0 || st.MultiDescDrops == 0 {
		t.Fatalf("RX stats %+v: the traffic missed a case", st)
	}
	if st := plain.tx.Stats(); st.BadPackets == 0 {
		t.Fatalf("TX stats %+v: the traffic missed a case", st)
	}
}

func comparePlainTraced(t *testing.T, round int, a, b *rig) {
	t.Helper()
	for i := range a.rx.ring.q64 {
		if a.rx.ring.q64[i] != b.rx.ring.q64[i] {
			t.Fatalf("round %d: RX descriptor word %d: %#x without a trace, %#x with", round, i, a.rx.ring.q64[i], b.rx.ring.q64[i])
		}
	}
	for i := range a.tx.ring.q64 {
		if a.tx.ring.q64[i] != b.tx.ring.q64[i] {
			t.Fatalf("round %d: TX descriptor word %d: %#x without a trace, %#x with", round, i, a.tx.ring.q64[i], b.tx.ring.q64[i])
		}
	}
	for i := range a.tx.slots {
		sa, sb := a.tx.slots[i], b.tx.slots[i]
		if (sa.pool == nil) != (sb.pool == nil) || sa.index != sb.index || sa.off != sb.off {
			t.Fatalf("round %d: TX slot %d differs", round, i)
		}
	}
	for j := uint32(0); j < a.tx.rsN; j++ {
		if x, y := a.tx.rs[(a.tx.rsHead+j)%uint32(len(a.tx.rs))], b.tx.rs[(b.tx.rsHead+j)%uint32(len(b.tx.rs))]; x != y {
			t.Fatalf("round %d: RS entry %d: %d without a trace, %d with", round, j, x, y)
		}
	}
	type state struct {
		rxNext, txNext, clean, rsHead, rsN, sinceRS, rdt, tdt uint32
		rx                                                    RxStats
		tx                                                    TxStats
		inUse                                                 int
		discarding                                            bool
	}
	st := func(r *rig) state {
		return state{r.rx.next, r.tx.next, r.tx.clean, r.tx.rsHead, r.tx.rsN, r.tx.sinceRS,
			r.dev.reg[0xC058/4], r.dev.reg[0xE058/4], r.rx.Stats(), r.tx.Stats(), r.pool.InUse(), r.rx.discarding}
	}
	if sa, sb := st(a), st(b); sa != sb {
		t.Fatalf("round %d: state %+v without a trace, %+v with", round, sa, sb)
	}
}
