package stack

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/link/pcaplink"
)

// withFCS returns frame with its Ethernet FCS appended, as the wire
// delivers it to a simulated 82599.
func withFCS(frame []byte) []byte {
	out := append([]byte(nil), frame...)
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(frame))
}

// Frames the device drops before the stack sees them (bad FCS, runts,
// giants, another host's unicast, a full ring) move the stack's dev_rx_*
// counters: issue 12 found them invisible in `nicctl sim --stats`.
func TestDeviceDropsInStackCounters(t *testing.T) {
	p := newSimPair(t, nil, nil, Config{})
	good := padTo(ipFrame(17, 1, 0, false, udpPayload(7, []byte("hello"))), 60)
	copy(good[0:6], p.simB.MAC())
	want := map[Counter]uint64{}
	bad := withFCS(good)
	bad[len(bad)-1] ^= 0xff
	p.simB.Receive(bad)
	want[DevRxCRCErrors] = 1
	p.simB.Receive(withFCS(good[:40])) // 44 bytes with FCS
	want[DevRxUndersize] = 1
	giant := make([]byte, 1600)
	copy(giant, good)
	p.simB.Receive(withFCS(giant))
	want[DevRxOversize] = 1
	other := append([]byte(nil), good...)
	copy(other[0:6], []byte{2, 0, 0, 0, 0x77, 0x77})
	for i := 0; i < 3; i++ {
		p.simB.Receive(withFCS(other))
	}
	want[DevRxFiltered] = 3
	c := p.b.Counters()
	for k, v := range want {
		if c.Get(k) != v {
			t.Errorf("%s = %d, want %d (B: %v)", k, c.Get(k), v, nonZero(c))
		}
	}
	// With B's poll loops stopped, its ring fills: the device drops what
	// does not fit (into its packet buffer, then missed).
	p.b.Close()
	for i := 0; i < 4096; i++ {
		p.simB.Receive(withFCS(good))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c = p.b.Counters()
		if c.Get(DevRxRingFull)+c.Get(DevRxMissed) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.Get(DevRxRingFull)+c.Get(DevRxMissed) == 0 {
		t.Fatalf("4096 frames into a stopped stack's ring: no dev_rx_ring_full or dev_rx_missed (B: %v)", nonZero(c))
	}
	t.Logf("B after the ring filled: %v", nonZero(c))
}

func padTo(f []byte, n int) []byte {
	if len(f) >= n {
		return f
	}
	return append(append([]byte(nil), f...), make([]byte, n-len(f))...)
}

// The driver and the pcap wrapper report device drops.
var (
	_ link.DropCounter = (*ixgbe.NIC)(nil)
	_ link.DropCounter = (*pcaplink.Link)(nil)
)
