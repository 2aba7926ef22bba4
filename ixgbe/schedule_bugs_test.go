//go:build ixgbebugs

package ixgbe

import (
	"encoding/binary"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// Writing TDT before the descriptors (bugTailBeforeDescriptor) under a
// device that fetches at the doorbell: the device sends what the ring held
// before, so frames are lost or wrong on the wire, not only reported by
// the ownership checker. Under the default schedule the same run delivers
// every frame (the device looks only after TxBatch returns) and only the
// checker sees the bug.
func TestTailBeforeDescriptorFailsAtDoorbell(t *testing.T) {
	run := func(sc ixgbesim.Schedule) (good, bad int, checkErr error) {
		p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, schedule: sc,
			cfgA: WithBugs(Config{RxRingSize: 64, TxRingSize: 64}, BugTailBeforeDescriptor),
			cfgB: Config{RxRingSize: 64, TxRingSize: 64, Promiscuous: true}})
		p.waitLinks(t)
		pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Name: "bug-tx", Buffers: 128})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Release()
		rx := make([]dma.Packet, 32)
		next := uint64(0)
		for round := 0; round < 20; round++ {
			tx := make([]dma.Packet, 0, 16)
			for i := 0; i < 16; i++ {
				pk, err := pool.Alloc()
				if err != nil {
					break
				}
				room := pk.Room()
				copy(room[0:6], []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
				copy(room[6:12], p.a.MAC())
				binary.BigEndian.PutUint16(room[12:], schedEtherType)
				binary.BigEndian.PutUint64(room[14:], next+uint64(i))
				clear(room[22:60])
				pk.Len = 60
				tx = append(tx, pk)
			}
			k, _ := p.a.TxBatch(0, tx)
			for _, pk := range tx[k:] {
				pk.Free()
			}
			want := next
			next += uint64(k)
			for p.sa.Drain(0)+p.sb.Drain(0) > 0 {
			}
			n, _ := p.b.RxBatch(0, rx)
			for _, pk := range rx[:n] {
				d := pk.Data()
				if len(d) == 60 && binary.BigEndian.Uint16(d[12:]) == schedEtherType && binary.BigEndian.Uint64(d[14:]) == want {
					good++
					want++
				} else {
					bad++
				}
				pk.Free()
			}
		}
		bad += int(next) - good - bad
		return good, bad, p.sims.Check()
	}
	good, bad, err := run(ixgbesim.Schedule{})
	t.Logf("default schedule: %d frames right, %d wrong or missing; checker: %v", good, bad, err)
	if err == nil {
		t.Fatal("the ownership checker missed the bug under the default schedule")
	}
	good, bad, err = run(ixgbesim.Schedule{FetchAtDoorbell: true})
	t.Logf("fetch at the doorbell: %d frames right, %d wrong or missing; checker: %v", good, bad, err)
	if bad == 0 {
		t.Fatal("every frame arrived intact with a device that fetches at the doorbell")
	}
}
