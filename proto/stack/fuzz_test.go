package stack

import (
	"testing"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
)

// FuzzInput feeds arbitrary frames to a stack (after a valid Ethernet
// header to its MAC) and checks that it neither panics nor leaks buffers:
// once idle, every buffer of its pool is back except those the driver-less
// link never holds.
func FuzzInput(f *testing.F) {
	f.Add(ipFrame(17, 1, 0, false, udpPayload(7, []byte("hello")))[12:])
	f.Add(ipFrame(1, 2, 0, false, []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0})[12:])
	f.Add(ipFrame(17, 3, 0, true, make([]byte, 16))[12:])
	f.Add(ipFrame(17, 3, 16, false, make([]byte, 16))[12:])
	arp := make([]byte, 42)
	header.EncodeEthernet(arp, header.BroadcastMAC, header.MAC(macA), header.EtherTypeARP)
	header.EncodeARP(arp[14:], header.ARPRequest, header.MAC(macA), addrA.As4(), header.MAC{}, addrB.As4())
	f.Add(arp[12:])
	p := newPair(f, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	srv, _ := p.b.ListenUDP(netipAddrPort(7))
	pool := p.lb.RxPool(0)
	f.Fuzz(func(t *testing.T, rest []byte) {
		frame := make([]byte, 12+len(rest))
		copy(frame, macB)
		copy(frame[6:], macA)
		copy(frame[12:], rest)
		if len(frame) > 2048 {
			frame = frame[:2048]
		}
		p.la.Inject(frame)
		p.settle()
		for srv.Queued() > 0 {
			srv.ReadFrom(make([]byte, 10))
		}
		// Frames parked for ARP or kept by reassembly are copies; the only
		// buffers out are ones the stack is transmitting (none once idle).
		if out := pool.InUse(); out != 0 {
			t.Fatalf("%d buffers of B's pool still out after the frame", out)
		}
	})
}
