package ixgbesim

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// enableFC programs link flow control the way a driver does (3.7.7):
// thresholds in bytes, pause time and refresh in quanta.
func enableFC(d *tDriver, high, low uint32, pause, refresh uint32) {
	d.wr(regs.FCTTV(0), pause|pause<<16)
	d.wr(regs.FCRTV, refresh)
	d.wr(regs.FCRTL(0), low|regs.FCRTL_XONE)
	d.wr(regs.FCRTH(0), high|regs.FCRTH_FCEN)
	d.wr(regs.FCCFG, regs.FCCFG_TFCE_802_3X)
	d.wr(regs.MFLCN, regs.MFLCN_RFCE)
}

// pauseFrame builds a PAUSE frame (FCS included) from src with pause time t.
func pauseFrame(src []byte, t uint16) []byte {
	f := make([]byte, 60)
	copy(f, regs.PauseDA[:])
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], regs.PauseEtherType)
	binary.BigEndian.PutUint16(f[14:], regs.PauseOpcode)
	binary.BigEndian.PutUint16(f[16:], t)
	return withFCS(f)
}

// checkPause checks that f is a well-formed PAUSE frame from mac with
// pause time want.
func checkPause(t *testing.T, f []byte, mac []byte, want uint16) {
	t.Helper()
	if len(f) != 64 {
		t.Fatalf("PAUSE frame is %d bytes, want 64", len(f))
	}
	if [6]byte(f[0:6]) != regs.PauseDA || string(f[6:12]) != string(mac) {
		t.Fatalf("PAUSE addresses %x -> %x, want %x -> %x", f[6:12], f[0:6], mac, regs.PauseDA)
	}
	if et, op := binary.BigEndian.Uint16(f[12:]), binary.BigEndian.Uint16(f[14:]); et != 0x8808 || op != 1 {
		t.Fatalf("EtherType %#x opcode %#x, want 0x8808 0x0001", et, op)
	}
	if got := binary.BigEndian.Uint16(f[16:]); got != want {
		t.Fatalf("pause time %#x, want %#x", got, want)
	}
	for i := 18; i < 60; i++ {
		if f[i] != 0 {
			t.Fatalf("padding byte %d = %#x", i, f[i])
		}
	}
	if crc32.ChecksumIEEE(f[:60]) != binary.LittleEndian.Uint32(f[60:]) {
		t.Fatal("PAUSE frame FCS is wrong")
	}
}

func TestPauseGeneration(t *testing.T) {
	n := newStepped(t, "fcgen", nil)
	link := newCapture()
	n.Attach(link)
	d := initDriver(t, n, 1)
	d.waitLink()
	const high, low = 8 << 10, 4 << 10
	enableFC(d, high, low, 0x100, 0x80)
	src := []byte{2, 0, 0, 0, 0, 9}
	frame := withFCS(testFrame(n.MAC(), src, 996, 1)) // 996 bytes stored (FCS stripped)

	// Below FCRTH: nothing is sent.
	for i := 0; i < 8; i++ {
		if !n.Receive(frame) {
			t.Fatalf("frame %d not accepted", i)
		}
	}
	n.StepTx(0)
	if len(link.frames) != 0 || n.FlowControlXOFF() {
		t.Fatalf("%d frames sent with the buffer at %d bytes, below FCRTH %d", len(link.frames), 8*996, high)
	}
	// Crossing FCRTH: one XOFF with the FCTTV pause time.
	n.Receive(frame)
	n.Receive(frame) // still above: no second XOFF
	if !n.FlowControlXOFF() {
		t.Fatal("not in XOFF state above FCRTH")
	}
	for n.StepTx(0) {
	}
	if len(link.frames) != 1 {
		t.Fatalf("%d frames sent after crossing FCRTH, want 1 XOFF", len(link.frames))
	}
	checkPause(t, link.frames[0], n.MAC(), 0x100)
	if got := d.rd(regs.LXOFFTXC); got != 1 {
		t.Fatalf("LXOFFTXC = %d, want 1", got)
	}
	// Refresh: FCRTV quanta later, still full, the XOFF goes out again.
	n.Clock().Advance(0x7F * pauseQuantum)
	n.StepTx(0)
	if len(link.frames) != 1 {
		t.Fatalf("XOFF refreshed before FCRTV expired")
	}
	n.Clock().Advance(2 * pauseQuantum)
	n.StepTx(0)
	if len(link.frames) != 2 {
		t.Fatalf("%d frames after FCRTV expired, want a refreshed XOFF", len(link.frames))
	}
	checkPause(t, link.frames[1], n.MAC(), 0x100)
	// Draining below FCRTL: XON (pause time 0), once.
	for n.StepRx(0) {
	}
	if fr, by := n.PacketBufferLen(); fr != 0 || by != 0 {
		t.Fatalf("packet buffer holds %d frames, %d bytes after draining", fr, by)
	}
	if n.FlowControlXOFF() {
		t.Fatal("still in XOFF state after draining below FCRTL")
	}
	for n.Step() {
	}
	if len(link.frames) != 3 {
		t.Fatalf("%d frames after draining, want XOFF, XOFF, XON", len(link.frames))
	}
	checkPause(t, link.frames[2], n.MAC(), 0)
	if on, off := d.rd(regs.LXONTXC), d.rd(regs.LXOFFTXC); on != 1 || off != 1 {
		t.Fatalf("LXONTXC %d LXOFFTXC %d, want 1 and 1 (since last read)", on, off)
	}
	// No refresh after the XON.
	n.Clock().Advance(time.Millisecond)
	for n.Step() {
	}
	if len(link.frames) != 3 {
		t.Fatalf("%d frames: PAUSE sent after XON", len(link.frames))
	}
	if got := len(d.recv(0)); got != 10 {
		t.Fatalf("host got %d frames, want 10", got)
	}

	// Without XONE the XOFF state ends silently; with FCCFG.TFCE off no
	// PAUSE is sent at all.
	d.wr(regs.FCRTL(0), low)
	for i := 0; i < 10; i++ {
		n.Receive(frame)
	}
	for n.StepTx(0) {
	}
	if len(link.frames) != 4 {
		t.Fatalf("%d frames, want a 4th (XOFF)", len(link.frames))
	}
	for n.Step() {
	}
	d.recv(0)
	if len(link.frames) != 4 || n.FlowControlXOFF() {
		t.Fatalf("%d frames (XOFF state %v): an XON was sent with FCRTL.XONE clear", len(link.frames), n.FlowControlXOFF())
	}
	d.wr(regs.FCCFG, regs.FCCFG_TFCE_DISABLED)
	for i := 0; i < 10; i++ {
		n.Receive(frame)
	}
	for n.Step() {
	}
	if len(link.frames) != 4 {
		t.Fatalf("%d frames: PAUSE sent with FCCFG.TFCE disabled", len(link.frames))
	}
}

func TestPauseReception(t *testing.T) {
	n := newStepped(t, "fcrx", nil)
	link := newCapture()
	n.Attach(link)
	d := initDriver(t, n, 1)
	d.waitLink()
	d.wr(regs.MFLCN, regs.MFLCN_RFCE)
	peer := []byte{2, 0, 0, 0, 0, 7}
	data := testFrame(peer, n.MAC(), 100, 1)

	// XOFF: transmission stops for the pause time, on the virtual clock.
	if !n.Receive(pauseFrame(peer, 1000)) {
		t.Fatal("PAUSE not acted on")
	}
	if !n.TxPaused() {
		t.Fatal("XOFF did not pause transmission")
	}
	d.send(0, data)
	for n.StepTx(0) {
	}
	if len(link.frames) != 0 {
		t.Fatal("sent while paused")
	}
	n.Clock().Advance(999 * pauseQuantum)
	for n.StepTx(0) {
	}
	if len(link.frames) != 0 {
		t.Fatal("sent before the pause time ran out")
	}
	n.Clock().Advance(2 * pauseQuantum)
	for n.StepTx(0) {
	}
	if len(link.frames) != 1 {
		t.Fatalf("%d frames sent after the pause ran out, want 1", len(link.frames))
	}
	// XOFF then XON: transmission resumes at once.
	n.Receive(pauseFrame(peer, 0xFFFF))
	d.send(0, data)
	for n.StepTx(0) {
	}
	if len(link.frames) != 1 {
		t.Fatal("sent while paused")
	}
	n.Receive(pauseFrame(peer, 0))
	if n.TxPaused() {
		t.Fatal("XON did not end the pause")
	}
	for n.StepTx(0) {
	}
	if len(link.frames) != 2 {
		t.Fatalf("%d frames after XON, want 2", len(link.frames))
	}
	// Consumed: not delivered, not in GPRC; counted in LXON/LXOFFRXCNT.
	for n.Step() {
	}
	if got := d.recv(0); len(got) != 0 {
		t.Fatalf("host got %d PAUSE frames", len(got))
	}
	if gprc, off, on := d.rd(regs.GPRC), d.rd(regs.LXOFFRXCNT), d.rd(regs.LXONRXCNT); gprc != 0 || off != 2 || on != 1 {
		t.Fatalf("GPRC %d LXOFFRXCNT %d LXONRXCNT %d, want 0 2 1", gprc, off, on)
	}
	// MFLCN.PMCF passes them up (and the MAC still acts on them).
	d.wr(regs.MFLCN, regs.MFLCN_RFCE|regs.MFLCN_PMCF)
	n.Receive(pauseFrame(peer, 0))
	for n.Step() {
	}
	if got := d.recv(0); len(got) != 1 || d.rd(regs.LXONRXCNT) != 1 {
		t.Fatalf("with PMCF the host got %d frames, want 1", len(got))
	}
	// Without RFCE a PAUSE is ignored (and, without PMCF, dropped).
	d.wr(regs.MFLCN, 0)
	n.Receive(pauseFrame(peer, 0xFFFF))
	if n.TxPaused() || d.rd(regs.LXOFFRXCNT) != 0 {
		t.Fatal("PAUSE acted on with MFLCN.RFCE clear")
	}
	for n.Step() {
	}
	if got := d.recv(0); len(got) != 0 {
		t.Fatalf("host got %d MAC control frames without PMCF", len(got))
	}
}

// TestPauseBackToBack: a sender that never waits and a receiver whose
// host polls rarely. With flow control nothing is lost; without it the
// receiver's packet buffer overflows (MPC).
func TestPauseBackToBack(t *testing.T) {
	run := func(fc bool) (missed, got uint32) {
		dom := NewDomain()
		a := newStepped(t, "fca", dom)
		b := newStepped(t, "fcb", dom)
		Connect(a, b, nil, nil)
		da := initDriver(t, a, 1)
		db := initDriver(t, b, 1)
		da.waitLink()
		db.waitLink()
		// Frames wait in the packet buffer for descriptors (DROP_EN
		// clear), as flow control needs: with DROP_EN set a full ring
		// drops them before the buffer fills.
		db.clr(regs.SRRCTL(0), regs.SRRCTL_DROP_EN)
		if fc {
			// 128 KB buffer (initDriver): XOFF at 96 KB, XON at 64 KB.
			enableFC(da, 96<<10, 64<<10, 0xFFFF, 0x7FFF)
			enableFC(db, 96<<10, 64<<10, 0xFFFF, 0x7FFF)
		}
		const total = 3000
		sent := 0
		for round := 0; sent < total || round < 10; round++ {
			for sent < total {
				k := da.send(0, testFrame(b.MAC(), a.MAC(), 1000, uint32(sent)))
				if k == 0 {
					break
				}
				sent++
			}
			for a.StepTx(0) {
			}
			// B's host polls once per 400 frames' worth of A's work.
			if round%8 == 0 {
				for b.Step() {
				}
				got += uint32(len(db.recv(0)))
			}
			a.Clock().Advance(10 * time.Microsecond)
			if round > 100000 {
				t.Fatal("no progress")
			}
		}
		for i := 0; i < 20; i++ {
			for b.Step() || a.Step() {
			}
			got += uint32(len(db.recv(0)))
		}
		if drops := db.rd(regs.QPRDC(0)); drops != 0 {
			t.Errorf("QPRDC %d with DROP_EN clear", drops)
		}
		return db.rd(regs.MPC(0)), got
	}
	missed, got := run(true)
	if missed != 0 || got != 3000 {
		t.Errorf("flow control on: MPC %d, received %d of 3000", missed, got)
	}
	missed, got = run(false)
	if missed == 0 {
		t.Errorf("flow control off: MPC 0, received %d of 3000; the test no longer overruns the receiver", got)
	}
}
