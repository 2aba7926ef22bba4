package pcaplink

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/link/memlink"
)

// What the wrapper records reads back with an independent pcap reader:
// transmitted frames, then received ones, byte for byte.
func TestRecordsReadBack(t *testing.T) {
	a, b, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	var file bytes.Buffer
	wa, err := Wrap(a, &file)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := 0; i < 5; i++ {
		p, _ := a.RxPool(0).Alloc()
		f := p.Room()[:60+i*100]
		for k := range f {
			f[k] = byte(i + k)
		}
		p.Len = uint16(len(f))
		frames = append(frames, append([]byte(nil), f...))
		if n, err := wa.TxBatch(0, []dma.Packet{p}); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	}
	// Frames b sends come back through a's RxBatch.
	pb, _ := b.RxPool(0).Alloc()
	copy(pb.Room(), frames[0])
	pb.Len = 60
	b.TxBatch(0, []dma.Packet{pb})
	rx := make([]dma.Packet, 4)
	n, _ := wa.RxBatch(0, rx)
	for _, p := range rx[:n] {
		p.Free()
	}
	frames = append(frames, frames[0])
	if err := wa.Flush(); err != nil {
		t.Fatal(err)
	}
	// The libpcap savefile format, read independently: a 24-byte header
	// (magic a1b23c4d for nanosecond timestamps, version 2.4, link type 1 =
	// Ethernet), then records of a 16-byte header (seconds, nanoseconds,
	// captured and original lengths) and the frame.
	buf := file.Bytes()
	le := binary.LittleEndian
	if len(buf) < 24 || le.Uint32(buf) != 0xa1b23c4d || le.Uint16(buf[4:]) != 2 || le.Uint16(buf[6:]) != 4 || le.Uint32(buf[20:]) != 1 {
		t.Fatalf("bad file header %x", buf[:min(24, len(buf))])
	}
	buf = buf[24:]
	for i, want := range frames {
		if len(buf) < 16 {
			t.Fatalf("record %d missing", i)
		}
		incl, orig := int(le.Uint32(buf[8:])), int(le.Uint32(buf[12:]))
		if incl != len(want) || orig != len(want) || le.Uint32(buf[4:]) >= 1e9 || !bytes.Equal(buf[16:16+incl], want) {
			t.Fatalf("record %d: %d/%d bytes, want %d", i, incl, orig, len(want))
		}
		buf = buf[16+incl:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d trailing bytes", len(buf))
	}
	if wa.Frames() != uint64(len(frames)) {
		t.Fatalf("Frames() = %d", wa.Frames())
	}
}

// The wrapper passes the stack's wake-up to the link it wraps, so a
// recorded link keeps interrupt (notified) mode, and the frame it announces
// is recorded when it is received; over a link that cannot notify it
// reports false.
func TestForwardsRxNotify(t *testing.T) {
	a, b, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	var file bytes.Buffer
	wa, err := Wrap(a, &file)
	if err != nil {
		t.Fatal(err)
	}
	var l link.Link = wa
	rn, ok := l.(link.RxNotifier)
	if !ok {
		t.Fatal("a pcaplink.Link is not a link.RxNotifier")
	}
	woke := make(chan struct{}, 1)
	if !rn.SetRxNotify(0, func() {
		select {
		case woke <- struct{}{}:
		default:
		}
	}) {
		t.Fatal("SetRxNotify over a notifying link reported false")
	}
	p, _ := b.RxPool(0).Alloc()
	p.Len = 60
	if n, _ := b.TxBatch(0, []dma.Packet{p}); n != 1 {
		t.Fatal("TxBatch refused the frame")
	}
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up within 10s of a frame arriving on the wrapped link")
	}
	rx := make([]dma.Packet, 4)
	n, _ := wa.RxBatch(0, rx)
	for _, p := range rx[:n] {
		p.Free()
	}
	if n != 1 || wa.Frames() != 1 {
		t.Errorf("received %d frames, recorded %d; want 1 and 1", n, wa.Frames())
	}

	silent, err := Wrap(struct{ link.Link }{a}, &file)
	if err != nil {
		t.Fatal(err)
	}
	if silent.SetRxNotify(0, func() {}) {
		t.Error("SetRxNotify over a link without notification reported true")
	}
}
