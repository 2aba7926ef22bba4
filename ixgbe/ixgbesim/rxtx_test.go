package ixgbesim

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// soloNIC returns an initialized stepped NIC with nq queues whose wire is
// a capture, link up.
func soloNIC(t *testing.T, name string, nq int) (*NIC, *tDriver, *capture) {
	t.Helper()
	n := newStepped(t, name, nil)
	w := newCapture()
	n.Attach(w)
	d := initDriver(t, n, nq)
	d.waitLink()
	return n, d, w
}

func TestRxStatisticsAndMACChecks(t *testing.T) {
	n, d, _ := soloNIC(t, "rxs", 1)
	d.clr(regs.FCTRL, regs.FCTRL_UPE|regs.FCTRL_MPE)
	me := n.MAC()
	other := []byte{0x02, 0, 0, 0, 0, 9}
	bcast := []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	mcast := []byte{0x01, 0x00, 0x5E, 0, 0, 1}

	good := withFCS(testFrame(me, other, 60, 1)) // 64 on the wire
	if !n.Receive(good) {
		t.Fatal("good unicast to our MAC refused")
	}
	if n.Receive(withFCS(testFrame(other, me, 100, 2))) {
		t.Error("unicast to another MAC accepted without UPE")
	}
	if !n.Receive(withFCS(testFrame(bcast, other, 100, 3))) {
		t.Error("broadcast refused with BAM")
	}
	if n.Receive(withFCS(testFrame(mcast, other, 100, 4))) {
		t.Error("multicast accepted without MPE or MTA")
	}
	// MTA: MO = 0 uses address bits 47:36.
	h := (uint32(mcast[4]) | uint32(mcast[5])<<8) >> 4 & 0xFFF
	d.wr(regs.MCSTCTRL, regs.MCSTCTRL_MFE)
	d.wr(regs.MTA(int(h>>5)), 1<<(h&31))
	if !n.Receive(withFCS(testFrame(mcast, other, 100, 5))) {
		t.Error("multicast in the MTA refused")
	}
	bad := withFCS(testFrame(me, other, 100, 6))
	bad[20] ^= 1
	if n.Receive(bad) {
		t.Error("bad FCS accepted")
	}
	if n.Receive(withFCS(testFrame(me, other, 50, 7))) {
		t.Error("undersize accepted")
	}
	short := withFCS(testFrame(me, other, 50, 8))
	short[0] ^= 0x80
	n.Receive(short)
	if n.Receive(withFCS(testFrame(me, other, 1600, 9))) {
		t.Error("oversize accepted without jumbo frames")
	}
	d.set(regs.HLREG0, regs.HLREG0_JUMBOEN)
	d.wr(regs.MAXFRS, 9018<<regs.MAXFRS_MFS_SHIFT)
	if !n.Receive(withFCS(testFrame(me, other, 1600, 10))) {
		t.Error("1604-byte frame refused with jumbo frames enabled")
	}

	for reg, want := range map[uint32]uint32{
		regs.GPRC: 4, regs.BPRC: 1, regs.MPRC: 1, regs.CRCERRS: 1, regs.RUC: 1, regs.RFC: 1,
		regs.ROC: 1, regs.TPR: 10, regs.PRC64: 1, regs.PRC127: 2, regs.PRC1522: 1,
	} {
		if got := n.Read32(reg); got != want {
			t.Errorf("%s = %d, want %d", RegisterName(reg), got, want)
		}
	}
	if lo, hi := n.Read32(regs.GORCL), n.Read32(regs.GORCH); hi != 0 || lo != 64+104+104+1604 {
		t.Errorf("GORC = %d, want %d", lo, 64+104+104+1604)
	}
	// The 4 good frames land in queue 0 with the FCS stripped.
	n.Drain(0)
	got := d.recv(0)
	if len(got) != 4 || !bytes.Equal(got[0], good[:60]) {
		t.Fatalf("received %d frames (first %d bytes)", len(got), len(got[0]))
	}
	if v := n.Read32(regs.QPRC(0)); v != 4 {
		t.Errorf("QPRC[0] = %d", v)
	}
	if v := n.Read32(regs.QBRC_L(0)); v != 60+100+100+1600 {
		t.Errorf("QBRC[0] = %d", v)
	}
}

func TestRxKeepsFCSWithoutStrip(t *testing.T) {
	n, d, _ := soloNIC(t, "fcs", 1)
	d.clr(regs.HLREG0, regs.HLREG0_RXCRCSTRP)
	d.clr(regs.RDRXCTL, regs.RDRXCTL_CRCSTRIP)
	f := withFCS(testFrame(n.MAC(), n.MAC(), 80, 1))
	n.Receive(f)
	n.Drain(0)
	if got := d.recv(0); len(got) != 1 || !bytes.Equal(got[0], f) {
		t.Fatalf("got %v", got)
	}
}

func TestRxRingFullDropEn(t *testing.T) {
	n, d, _ := soloNIC(t, "drop", 1)
	f := withFCS(testFrame(n.MAC(), n.MAC(), 100, 1))
	// 63 descriptors are posted; 70 frames: 7 dropped with DROP_EN.
	for i := 0; i < 70; i++ {
		if !n.Receive(f) {
			t.Fatalf("frame %d refused by the MAC", i)
		}
	}
	n.Drain(0)
	if v := n.Read32(regs.QPRDC(0)); v != 7 {
		t.Errorf("QPRDC[0] = %d, want 7", v)
	}
	if got := d.recv(0); len(got) != 63 {
		t.Errorf("received %d, want 63", len(got))
	}
}

func TestRxRingFullWaitsThenMisses(t *testing.T) {
	n, d, _ := soloNIC(t, "wait", 1)
	d.clr(regs.SRRCTL(0), regs.SRRCTL_DROP_EN)
	d.wr(regs.RXPBSIZE(0), 16<<10) // 16 KB packet buffer
	f := withFCS(testFrame(n.MAC(), n.MAC(), 1000, 1))
	accepted := 0
	for i := 0; i < 63+20; i++ {
		if n.Receive(f) {
			accepted++
		}
		n.Drain(0)
	}
	// 63 in the ring, 16 (16 KB / 1000 B) waiting, the rest missed.
	if accepted != 63+16 {
		t.Errorf("accepted %d, want %d", accepted, 63+16)
	}
	if v := n.Read32(regs.MPC(0)); v != 4 {
		t.Errorf("MPC[0] = %d, want 4", v)
	}
	if v := n.Read32(regs.QPRDC(0)); v != 0 {
		t.Errorf("QPRDC[0] = %d without DROP_EN", v)
	}
	got := d.recv(0)
	n.Drain(0)
	got = append(got, d.recv(0)...)
	if len(got) != 63+16 {
		t.Errorf("received %d after freeing descriptors, want %d", len(got), 63+16)
	}
}

func TestRxFrameSpansDescriptors(t *testing.T) {
	n, d, _ := soloNIC(t, "span", 1)
	d.wr(regs.SRRCTL(0), d.rd(regs.SRRCTL(0))&^regs.SRRCTL_BSIZEPACKET_MASK|1) // 1 KB buffers
	d.set(regs.HLREG0, regs.HLREG0_JUMBOEN)
	d.wr(regs.MAXFRS, 9018<<regs.MAXFRS_MFS_SHIFT)
	frame := testFrame(n.MAC(), n.MAC(), 2500, 7)
	n.Receive(withFCS(frame))
	n.Drain(0)
	rq := &d.rx[0]
	var got []byte
	for i := 0; i < 3; i++ {
		desc := rq.desc(i)
		st := atomicLoad32(desc[regs.RXD_WB_STATUS_ERROR:])
		l := int(binary.LittleEndian.Uint16(desc[regs.RXD_WB_LENGTH:]))
		wantEOP := i == 2
		if st&regs.RXD_STAT_DD == 0 || (st&regs.RXD_STAT_EOP != 0) != wantEOP {
			t.Fatalf("descriptor %d status %#x", i, st)
		}
		got = append(got, rq.buf(i)[:l]...)
	}
	if !bytes.Equal(got, frame) {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(frame))
	}
	if v := n.Read32(regs.RDH(0)); v != 3 {
		t.Errorf("RDH = %d, want 3", v)
	}
}

func TestTxPaddingFCSAndStats(t *testing.T) {
	n, d, w := soloNIC(t, "txp", 2)
	short := testFrame([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, n.MAC(), 42, 1)
	d.wr(regs.TQSM(0), 5<<8) // queue 1 -> counter set 5
	d.send(1, short)
	n.Drain(0)
	if len(w.frames) != 1 {
		t.Fatalf("sent %d frames", len(w.frames))
	}
	f := w.frames[0]
	if len(f) != 64 || !bytes.Equal(f[:42], short) || !bytes.Equal(f[42:60], make([]byte, 18)) {
		t.Fatalf("padded frame wrong: %d bytes", len(f))
	}
	if binary.LittleEndian.Uint32(f[60:]) != crc32.ChecksumIEEE(f[:60]) {
		t.Fatal("bad FCS on the wire")
	}
	for reg, want := range map[uint32]uint32{regs.GPTC: 1, regs.TPT: 1, regs.BPTC: 1, regs.PTC64: 1,
		regs.QPTCAlias(5): 1, regs.QBTC_L(5): 64, regs.GOTCL: 64} {
		if got := n.Read32(reg); got != want {
			t.Errorf("%s = %d, want %d", RegisterName(reg), got, want)
		}
	}
	// Without TXPADEN a short frame goes out short.
	d.clr(regs.HLREG0, regs.HLREG0_TXPADEN)
	d.send(1, short)
	n.Drain(0)
	if l := len(w.frames[1]); l != 46 {
		t.Errorf("unpadded frame is %d bytes, want 46", l)
	}
}

// txDesc writes a raw advanced data descriptor.
func txDesc(q *tQueue, i int, buf uint64, length int, cmd uint32) {
	desc := q.desc(i)
	binary.LittleEndian.PutUint64(desc[0:], buf)
	binary.LittleEndian.PutUint32(desc[8:], cmd|regs.TXD_DCMD_DEXT|regs.TXD_DTYP_DATA|uint32(length))
	binary.LittleEndian.PutUint32(desc[12:], uint32(length)<<regs.TXD_PAYLEN_SHIFT)
}

func TestTxMultiDescriptorAndWriteBackBatching(t *testing.T) {
	n, d, w := soloNIC(t, "txm", 1)
	tq := &d.tx[0]
	d.wr(regs.TXDCTL(0), d.rd(regs.TXDCTL(0))&^regs.TXDCTL_WTHRESH|4<<regs.TXDCTL_WTHRESH_SHIFT)
	// Frame A in three descriptors (RS only on the last), then frames
	// B..F in one each with RS.
	frameA := testFrame(n.MAC(), n.MAC(), 300, 0xA)
	copy(tq.buf(0), frameA[:100])
	copy(tq.buf(1), frameA[100:250])
	copy(tq.buf(2), frameA[250:])
	txDesc(tq, 0, tq.bufIOVA(0), 100, regs.TXD_DCMD_IFCS)
	txDesc(tq, 1, tq.bufIOVA(1), 150, 0)
	txDesc(tq, 2, tq.bufIOVA(2), 50, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS)
	for i := 3; i < 8; i++ {
		f := testFrame(n.MAC(), n.MAC(), 70, uint32(i))
		copy(tq.buf(i), f)
		txDesc(tq, i, tq.bufIOVA(i), 70, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	}
	d.wr(regs.TDT(0), 8)
	dd := func(i int) bool { return atomicLoad32(tq.desc(i)[12:])&regs.TXD_STAT_DD != 0 }
	for i := 0; i < 6; i++ { // descriptors 0..5: RS on 2, 3, 4, 5
		n.StepTx(0)
	}
	if !dd(2) || !dd(5) || dd(0) {
		t.Fatalf("after WTHRESH=4 RS descriptors: DD on 2=%v 5=%v 0=%v", dd(2), dd(5), dd(0))
	}
	n.StepTx(0)
	n.StepTx(0) // 6, 7: two pending, below WTHRESH
	if dd(6) || dd(7) {
		t.Fatal("write-back before WTHRESH was reached")
	}
	if v := n.Read32(regs.TDH(0)); v != 8 {
		t.Fatalf("TDH = %d, want 8", v)
	}
	n.StepTx(0) // ring idle: flush
	if !dd(6) || !dd(7) {
		t.Fatal("pending write-backs not flushed when the ring went idle")
	}
	if len(w.frames) != 6 || !bytes.Equal(w.frames[0][:300], frameA) || len(w.frames[0]) != 304 {
		t.Fatalf("wire got %d frames (first %d bytes)", len(w.frames), len(w.frames[0]))
	}
	// The buffer address stays in the write-back (facts §2).
	if binary.LittleEndian.Uint64(tq.desc(5)[0:]) != tq.bufIOVA(5) {
		t.Error("write-back overwrote the buffer address")
	}
}

func TestTxBadAndContextDescriptors(t *testing.T) {
	n, d, w := soloNIC(t, "txb", 1)
	tq := &d.tx[0]
	// 0: context descriptor (no data); 1: bad type; 2: zero length;
	// 3: good frame.
	ctx := tq.desc(0)
	binary.LittleEndian.PutUint64(ctx[0:], 0)
	binary.LittleEndian.PutUint32(ctx[8:], regs.TXD_DCMD_DEXT|regs.TXD_DTYP_CTXT|regs.TXD_DCMD_RS)
	binary.LittleEndian.PutUint32(ctx[12:], 0)
	bad := tq.desc(1)
	binary.LittleEndian.PutUint64(bad[0:], tq.bufIOVA(1))
	binary.LittleEndian.PutUint32(bad[8:], regs.TXD_DCMD_DEXT|0x7<<20|regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|64)
	txDesc(tq, 2, tq.bufIOVA(2), 0, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS)
	f := testFrame(n.MAC(), n.MAC(), 64, 3)
	copy(tq.buf(3), f)
	txDesc(tq, 3, tq.bufIOVA(3), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 4)
	n.Drain(0)
	if len(w.frames) != 1 || !bytes.Equal(w.frames[0][:64], f) {
		t.Fatalf("wire got %d frames", len(w.frames))
	}
	v := n.Violations()
	if len(v) != 2 || v[0].Kind != BadDescriptor || v[0].Index != 1 || v[1].Kind != BadDescriptor || v[1].Index != 2 {
		t.Fatalf("violations %v", v)
	}
	for i := 0; i < 4; i++ {
		if atomicLoad32(tq.desc(i)[12:])&regs.TXD_STAT_DD == 0 {
			t.Errorf("descriptor %d not written back", i)
		}
	}
}

func TestTxHeadWriteBack(t *testing.T) {
	n, d, _ := soloNIC(t, "hwb", 1)
	tq := &d.tx[0]
	hw, err := n.DMA().Alloc(64, 64)
	if err != nil {
		t.Fatal(err)
	}
	d.wr(regs.TDWBAH(0), uint32(hw.IOVA()>>32))
	d.wr(regs.TDWBAL(0), uint32(hw.IOVA())|1)
	for i := 0; i < 3; i++ {
		f := testFrame(n.MAC(), n.MAC(), 64, uint32(i))
		copy(tq.buf(i), f)
		txDesc(tq, i, tq.bufIOVA(i), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	}
	d.wr(regs.TDT(0), 3)
	n.Drain(0)
	if h := atomicLoad32(hw.Bytes()); h != 3 {
		t.Errorf("head written back = %d, want 3", h)
	}
	if atomicLoad32(tq.desc(0)[12:])&regs.TXD_STAT_DD != 0 {
		t.Error("DD written with head write-back enabled")
	}
}

func TestTraceOrdering(t *testing.T) {
	rec := trace.NewRecorder(1 << 12)
	dom := NewDomain()
	a, err := New(Config{Name: "ta", Mode: Stepped, Domain: dom, Trace: rec, DevID: 1, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Name: "tb", Mode: Stepped, Domain: dom, Trace: rec, DevID: 2, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	Connect(a, b, nil, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	da.waitLink()
	db.waitLink()
	rec.Reset()
	da.send(0, testFrame(b.MAC(), a.MAC(), 100, 1), testFrame(b.MAC(), a.MAC(), 100, 2))
	a.Drain(0)
	b.Drain(0)
	var txKinds, rxKinds []trace.Kind
	for _, e := range rec.Events() {
		switch e.Dev {
		case 1:
			if e.Dir == trace.TX {
				txKinds = append(txKinds, e.Kind)
			}
		case 2:
			if e.Dir == trace.RX {
				rxKinds = append(rxKinds, e.Kind)
			}
		}
	}
	// The doorbell (tail write, descriptors handed over) is recorded in
	// the register write itself; each write-back word is a dev_store
	// (TX: the status word; RX: dwords 0, 1, length, then status).
	wantTx := []trace.Kind{trace.DevTailWrite, trace.DevDescAtTail, trace.DevDescAtTail,
		trace.DevTailRead, trace.DevFetch, trace.DevDMA, trace.DevWriteBack, trace.DevStore, trace.DevHead,
		trace.DevFetch, trace.DevDMA, trace.DevWriteBack, trace.DevStore, trace.DevHead}
	rxOne := []trace.Kind{trace.DevFetch, trace.DevDMA, trace.DevWriteBack, trace.DevStore, trace.DevStore, trace.DevStore, trace.DevStore, trace.DevHead}
	wantRx := append(append([]trace.Kind{trace.DevTailRead}, rxOne...), rxOne...)
	if !slices.Equal(txKinds, wantTx) {
		t.Errorf("TX events %v, want %v", txKinds, wantTx)
	}
	if !slices.Equal(rxKinds, wantRx) {
		t.Errorf("RX events %v, want %v", rxKinds, wantRx)
	}
}
