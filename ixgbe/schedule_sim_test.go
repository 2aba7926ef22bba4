package ixgbe

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// testSchedules are the simulator's adversarial schedules (ixgbesim
// Schedule) the driver must stay correct under, with several seeds of the
// random one.
var testSchedules = []ixgbesim.Schedule{
	{},
	{FetchAtDoorbell: true},
	{StatusFirst: true},
	{StatusFirst: true, Split: true},
	{Split: true},
	{FetchAtDoorbell: true, StatusFirst: true, Split: true},
	{Seed: 1}, {Seed: 2}, {Seed: 3}, {Seed: 0x5eed},
}

const schedEtherType = 0x88B5

// TestDriverUnderSchedules runs the real driver on both NICs of a pair
// under each schedule, stepped (one engine step at a time, the driver
// polling between steps, so it sees every intermediate state of a
// write-back) and free-running: every frame arrives once, in order, intact,
// with no driver error drop, no ownership violation and no IOMMU fault.
func TestDriverUnderSchedules(t *testing.T) {
	frames := 3000
	if testing.Short() || raceEnabled {
		frames = 800
	}
	for _, mode := range []ixgbesim.Mode{ixgbesim.Stepped, ixgbesim.FreeRunning} {
		for _, sc := range testSchedules {
			t.Run(fmt.Sprintf("%v/%v", mode, sc), func(t *testing.T) {
				runScheduled(t, mode, sc, frames)
			})
		}
	}
}

func runScheduled(t *testing.T, mode ixgbesim.Mode, sc ixgbesim.Schedule, frames int) {
	p := newSimPair(t, pairOpts{mode: mode, schedule: sc,
		cfgA: Config{RxRingSize: 64, TxRingSize: 64}, cfgB: Config{RxRingSize: 64, TxRingSize: 64, Promiscuous: true}})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Name: "sched-tx", Buffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	tx := make([]dma.Packet, 0, 16)
	rx := make([]dma.Packet, 16)
	sent, next := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for iter := 0; next < frames; iter++ {
		if time.Now().After(deadline) {
			t.Fatalf("stuck: sent %d, received %d of %d; B %+v", sent, next, frames, p.b.Stats())
		}
		if iter%64 == 0 {
			// A frame the driver dropped never comes: fail now, not at
			// the deadline.
			if q := p.b.Stats().Queues[0]; q.RxErrorDrops+q.RxMultiDescDrops != 0 {
				t.Fatalf("driver error drops after %d frames: %+v", next, q)
			}
		}
		// At most 32 frames in flight: B's ring (64, of which the device
		// owns 63) holds them all, so nothing is dropped for want of a
		// descriptor when the receiver polls late.
		for len(tx) < cap(tx) && sent+len(tx) < frames && sent+len(tx)-next < 32 {
			pk, err := pool.Alloc()
			if err != nil {
				break
			}
			room := pk.Room()
			copy(room[0:6], []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
			copy(room[6:12], p.a.MAC())
			binary.BigEndian.PutUint16(room[12:], schedEtherType)
			l := 60 + (sent+len(tx))%400
			for i := 14; i < l; i++ {
				room[i] = byte(sent + len(tx) + i)
			}
			binary.BigEndian.PutUint64(room[14:], uint64(sent+len(tx)))
			pk.Len = uint16(l)
			tx = append(tx, pk)
		}
		k, err := p.a.TxBatch(0, tx)
		if err != nil {
			t.Fatal(err)
		}
		sent += k
		tx = append(tx[:0], tx[k:]...)
		// Stepped: one unit of engine work at a time, polling B between
		// steps, so that the driver sees a write-back half done.
		for s := 0; s < 8 && mode == ixgbesim.Stepped; s++ {
			movedA := p.sa.Step()
			if !p.sb.Step() && !movedA {
				break
			}
			next = receiveChecked(t, p, rx, next)
		}
		next = receiveChecked(t, p, rx, next)
	}
	for _, pk := range tx {
		pk.Free()
	}
	st := p.b.Stats()
	for _, q := range st.Queues {
		if q.RxErrorDrops != 0 || q.RxMultiDescDrops != 0 {
			t.Fatalf("driver error drops under %v: %+v", sc, q)
		}
	}
	for _, q := range p.a.Stats().Queues {
		if q.TxFreeErrors != 0 || q.TxBadPackets != 0 {
			t.Fatalf("TX errors under %v: %+v", sc, q)
		}
	}
	p.checkClean(t)
}

// receiveChecked polls B once and checks each frame against the one
// expected next.
func receiveChecked(t *testing.T, p *simPair, rx []dma.Packet, next int) int {
	t.Helper()
	k, err := p.b.RxBatch(0, rx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range rx[:k] {
		d := pk.Data()
		l := 60 + next%400
		switch {
		case len(d) != l:
			t.Fatalf("frame %d: %d bytes, want %d (it says it is frame %d)", next, len(d), l, binary.BigEndian.Uint64(d[14:]))
		case binary.BigEndian.Uint64(d[14:]) != uint64(next):
			t.Fatalf("frame %d arrived as frame %d", next, binary.BigEndian.Uint64(d[14:]))
		}
		for i := 22; i < l; i++ {
			if d[i] != byte(next+i) {
				t.Fatalf("frame %d: byte %d is %#x, want %#x", next, i, d[i], byte(next+i))
			}
		}
		pk.Free()
		next++
	}
	return next
}
