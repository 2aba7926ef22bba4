//go:build ixgbebugs

package advring

import (
	"testing"

	"github.com/verinic/verinic/dma"
)

// With the ixgbebugs tag the switches are live: WithBugs sets them, and a
// queue made with one commits it (here BugLenMinusFCS: the length handed
// up is 4 bytes short). The suites that show every bug caught are in
// ixgbe/ and models/.
func TestBugsOnWithTag(t *testing.T) {
	if c := WithBugs(Config{}, BugDoublePost); !c.bugs.has(BugDoublePost) || c.bugs.has(BugWrapOffByOne) {
		t.Fatalf("WithBugs(DoublePost): bugs %#x", c.bugs)
	}
	r := newRigBugs(t, 64, BugLenMinusFCS)
	r.writeBack(0, RxStatDD|RxStatEOP, 60)
	pkts := make([]dma.Packet, 4)
	if k, err := r.port.RxBatch(1, pkts); err != nil || k != 1 || pkts[0].Len != 56 {
		t.Fatalf("RxBatch with LenMinusFCS = %d, %v, length %d; want 1 frame of 56", k, err, pkts[0].Len)
	}
	pkts[0].Free()
}
