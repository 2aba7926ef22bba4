package memlink

import (
	"net"
	"testing"

	"github.com/verinic/verinic/dma"
)

func pair(t *testing.T, f Faults) (*Endpoint, *Endpoint) {
	a, b, err := Pair(Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, WireFrames: 4}, f, Faults{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func recv(b *Endpoint) []byte {
	var out []byte
	pkts := make([]dma.Packet, 8)
	n, _ := b.RxBatch(0, pkts)
	for _, p := range pkts[:n] {
		out = append(out, p.Data()[0])
		p.Free()
	}
	return out
}

func TestWireDeliversInOrderAndBounds(t *testing.T) {
	a, b := pair(t, Faults{})
	for i := 0; i < 6; i++ {
		a.Inject([]byte{byte(i), 0, 0})
	}
	if got := recv(b); string(got) != "\x00\x01\x02\x03" || b.RxFrames.Load() != 4 || a.WireDrops.Load() != 2 {
		t.Fatalf("got %v, wire drops %d", got, a.WireDrops.Load())
	}
	// Transmitted buffers go back to the sender's pool.
	free := a.RxPool(0).Available()
	p, _ := a.RxPool(0).Alloc()
	p.Len = 14
	a.TxBatch(0, []dma.Packet{p})
	if a.RxPool(0).Available() != free {
		t.Fatal("TxBatch leaked the buffer")
	}
}

func TestFaults(t *testing.T) {
	a, b := pair(t, Faults{Duplicate: 1})
	a.Inject([]byte{7})
	if got := recv(b); len(got) != 2 {
		t.Fatalf("duplicate: %v", got)
	}
	a.SetFaults(Faults{Drop: 1})
	a.Inject([]byte{7})
	if got := recv(b); len(got) != 0 || a.FaultDrops.Load() != 1 {
		t.Fatalf("drop: %v", got)
	}
	a.SetFaults(Faults{Reorder: 1})
	a.Inject([]byte{1})
	a.Inject([]byte{2})
	if got := recv(b); string(got) != "\x02\x01" {
		t.Fatalf("reorder: %v", got)
	}
	a.SetFaults(Faults{Corrupt: 1, Seed: 3})
	frame := []byte{0, 0, 0, 0}
	a.Inject(frame)
	pkts := make([]dma.Packet, 1)
	if n, _ := b.RxBatch(0, pkts); n != 1 || string(pkts[0].Data()) == string(frame) {
		t.Fatal("corrupt: frame unchanged")
	}
	pkts[0].Free()
}
