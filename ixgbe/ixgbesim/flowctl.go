package ixgbesim

import (
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// Link flow control: IEEE 802.3x PAUSE frames (datasheet 3.7.7).
//
// Transmit side (3.7.7.2): with FCCFG.TFCE = 01b and FCRTH[0].FCEN set, the
// MAC sends an XOFF (pause time FCTTV[0].TTV0) when the fill of receive
// packet buffer 0 reaches FCRTH[0]; while the fill stays at or above
// FCRTL[0] it sends the XOFF again every FCRTV quanta (the refresh
// threshold of the flow control shadow counter, 8.2.3.3.4); once the fill
// drops below FCRTL[0] it sends an XON (pause time 0) if FCRTL[0].XONE is
// set. PAUSE frames go out between data frames, ahead of any waiting data.
//
// Receive side (3.7.7.1): with MFLCN.RFCE set, a PAUSE frame stops the
// transmit engines at the next frame boundary for its pause time (quanta of
// 512 bit times, 51.2 ns at 10 Gb/s), measured on the NIC's clock (virtual
// in Stepped mode); a pause time of 0 (XON) resumes transmission at once.
// MAC control frames are passed to the host only with MFLCN.PMCF set and
// MFLCN.DPF clear; otherwise the MAC consumes them (not counted in GPRC).
//
// The simulator sends a PAUSE frame from the receive path at once, before
// the frame that crossed FCRTH is even acknowledged to its sender (see
// fcEmit for the locking); only when the wire stays busy, or the Link is
// not a cable, does it wait for the next engine pass (FreeRunning) or Step
// (Stepped).

// pauseQuantum is one pause quantum at 10 Gb/s: 512 bit times.
const pauseQuantum = regs.PauseQuantumBits * time.Nanosecond / 10

// pauseFrameLen is a PAUSE frame on the wire: 60 bytes padded, plus FCS.
const pauseFrameLen = 64

// pause frame kinds waiting for the transmitter.
const (
	pendNone int32 = iota
	pendXOFF
	pendXON
)

// tryTransmitter is a Link that can refuse to wait: TryTransmit sends the
// frame only if that needs no lock another goroutine holds, and reports
// whether it did. The cable implements it.
type tryTransmitter interface {
	TryTransmit(frame []byte) bool
}

// flowCtl is the MAC's link flow control state.
type flowCtl struct {
	// mu orders the state changes: xoff, and the stores to pending and
	// refreshAt that go with them (both are read without it).
	mu      sync.Mutex
	xoff    bool        // XOFF sent and the fill not yet below FCRTL
	inXOFF  atomic.Bool // xoff, for readers without mu
	pending atomic.Int32

	txMu  sync.Mutex // frame and emission
	frame [pauseFrameLen]byte

	// pausedUntil is when transmission may resume (clock UnixNano), 0 when
	// not paused by the link partner.
	pausedUntil atomic.Int64
	// refreshAt is when the XOFF is due to be sent again (clock UnixNano),
	// 0 when no refresh is armed.
	refreshAt atomic.Int64
}

// reset forgets the flow control state (device reset).
func (f *flowCtl) reset() {
	f.mu.Lock()
	f.xoff = false
	f.inXOFF.Store(false)
	f.pending.Store(pendNone)
	f.refreshAt.Store(0)
	f.mu.Unlock()
	f.pausedUntil.Store(0)
}

// linkFCTx reports whether the MAC sends link PAUSE frames (FCCFG.TFCE =
// 01b, 8.2.3.3.5).
func (n *NIC) linkFCTx() bool {
	return n.h.fccfg.Load()&regs.FCCFG_TFCE_MASK == regs.FCCFG_TFCE_802_3X
}

// fcFill is called by the receive MAC after it stored (or failed to store)
// a frame, with the packet buffer's fill in bytes: at or above FCRTH[0]
// with FCEN set, the MAC enters the XOFF state and sends an XOFF. wait is
// false for a MAC control frame passed up (see fcEmit).
func (n *NIC) fcFill(used int, wait bool) {
	if !n.linkFCTx() {
		return
	}
	if n.fc.inXOFF.Load() || n.fc.pending.Load() != pendNone {
		// A refresh may be due, a PAUSE frame waiting, or one being sent
		// by another goroutine right now (fcEmit waits for it).
		n.fcTick(wait)
	}
	fcrth := n.h.fcrth0.Load()
	if fcrth&regs.FCRTH_FCEN == 0 || used < int(fcrth&regs.FCRT_THRESH_MASK) {
		return
	}
	n.fc.mu.Lock()
	if n.fc.xoff {
		n.fc.mu.Unlock()
		return
	}
	n.fc.xoff = true
	n.fc.inXOFF.Store(true)
	n.fc.pending.Store(pendXOFF)
	n.fc.mu.Unlock()
	n.fcEmit(wait)
}

// fcDrain is called by the RX DMA engine after a frame left the packet
// buffer: below FCRTL[0] the XOFF state ends, with an XON if XONE is set.
func (n *NIC) fcDrain(used int) {
	n.fc.mu.Lock()
	if !n.fc.xoff {
		n.fc.mu.Unlock()
		return
	}
	fcrtl := n.reg(regs.FCRTL(0))
	if used >= int(fcrtl&regs.FCRT_THRESH_MASK) {
		n.fc.mu.Unlock()
		return
	}
	// The state, the waiting frame and the refresh change together under
	// fc.mu, so that a concurrent crossing of FCRTH cannot interleave.
	n.fc.xoff = false
	n.fc.inXOFF.Store(false)
	n.fc.refreshAt.Store(0)
	xon := fcrtl&regs.FCRTL_XONE != 0 && n.linkFCTx()
	if xon {
		n.fc.pending.Store(pendXON) // replaces an XOFF not yet sent
	} else {
		n.fc.pending.CompareAndSwap(pendXOFF, pendNone)
	}
	n.fc.mu.Unlock()
	if xon {
		n.fcEmit(true) // the RX engine holds no lock here
	}
}

// fcEmitTries bounds how often a PAUSE frame is retried while the wire is
// busy (its direction's lock taken) before it is left to the engine.
const fcEmitTries = 256

// fcEmit sends the waiting PAUSE frame(s) and reports whether it sent one.
//
// Locking: fc.txMu serializes PAUSE frames, so that an XON and an XOFF
// cannot overtake each other. Its holder never waits for another lock: it
// sends with TryTransmit, and the link partner's MAC, receiving a PAUSE,
// only tries fc.txMu (wait false). So a caller holding no fc.txMu may wait
// for it (wait true): the engine, and the receive path of a data frame
// (which runs under the other direction's cable lock and in the sender's
// engine, which is then held up, as it should be, until the XOFF is out).
// A busy wire is retried a bounded number of times, yielding in between,
// then left to the engine. With wait false a taken fc.txMu means its
// holder is sending and sends what is waiting after it.
func (n *NIC) fcEmit(wait bool) bool {
	if wait {
		// A PAUSE frame another goroutine is sending right now (taken
		// from pending, not yet delivered) must be out before the caller
		// goes on: the receive path's caller is the link partner's
		// transmitter. Taking and releasing the lock waits for that holder.
		n.fc.txMu.Lock()
		//lint:ignore SA2001 the empty section is the wait for the current holder
		n.fc.txMu.Unlock()
	}
	sentAny := false
	busy := 0
	for n.fc.pending.Load() != pendNone {
		if wait {
			n.fc.txMu.Lock()
		} else if !n.fc.txMu.TryLock() {
			return sentAny
		}
		sent, retry := n.fcEmitLocked(wait)
		n.fc.txMu.Unlock()
		sentAny = sentAny || sent
		if retry {
			if busy == fcEmitTries {
				n.kick()
				return sentAny
			}
			busy++
			runtime.Gosched()
		}
	}
	return sentAny
}

// fcEmitLocked sends the waiting PAUSE frame with fc.txMu held. retry
// reports that the wire was busy and the frame is still waiting. A Link
// without TryTransmit is written to only by the engine (wait true).
func (n *NIC) fcEmitLocked(wait bool) (sent, retry bool) {
	kind := n.fc.pending.Swap(pendNone)
	if kind == pendNone {
		return false, false
	}
	w := n.wire()
	if w == nil || n.removed.Load() || n.closed.Load() || !n.macLinkUp.Load() {
		// No link: the frame is lost; while the MAC stays in the XOFF
		// state the refresh sends the XOFF again.
		if kind == pendXOFF {
			n.fcScheduleRefresh()
		}
		return false, false
	}
	frame := n.buildPause(kind == pendXOFF)
	if tt, ok := w.(tryTransmitter); ok {
		if !tt.TryTransmit(frame) {
			n.fc.pending.CompareAndSwap(pendNone, kind)
			return false, true
		}
	} else if wait {
		w.Transmit(frame)
	} else {
		// A Link that cannot refuse to wait is left to the engine.
		n.fc.pending.CompareAndSwap(pendNone, kind)
		n.kick()
		return false, false
	}
	// PAUSE frames are counted as transmitted packets too (GPTC, MPTC,
	// GOTC, PTC64, TPT): Linux's ixgbe subtracts LXONTXC + LXOFFTXC from
	// them to report data packets.
	if kind == pendXOFF {
		n.count(regs.LXOFFTXC, 1)
	} else {
		n.count(regs.LXONTXC, 1)
	}
	n.count(regs.GPTC, 1)
	n.count(regs.TPT, 1)
	n.count(regs.MPTC, 1)
	n.count(regs.PTC64, 1)
	n.count64(pairGOTC, pauseFrameLen)
	if kind == pendXOFF {
		n.fcScheduleRefresh()
	}
	return true, false
}

// buildPause writes a PAUSE frame into n.fc.frame (caller holds txMu):
// DA 01:80:C2:00:00:01, SA the station address (RAL[0]/RAH[0]), EtherType
// 0x8808, opcode 0x0001, pause time (FCTTV[0].TTV0 for XOFF, 0 for XON),
// zero padding to 60 bytes and the FCS (3.7.7.1).
func (n *NIC) buildPause(xoff bool) []byte {
	f := n.fc.frame[:]
	clear(f)
	copy(f[0:6], regs.PauseDA[:])
	binary.LittleEndian.PutUint32(f[6:10], n.reg(regs.RAL(0)))
	binary.LittleEndian.PutUint16(f[10:12], uint16(n.reg(regs.RAH(0))))
	binary.BigEndian.PutUint16(f[12:14], regs.PauseEtherType)
	binary.BigEndian.PutUint16(f[14:16], regs.PauseOpcode)
	if xoff {
		binary.BigEndian.PutUint16(f[16:18], uint16(n.reg(regs.FCTTV(0))&regs.FCTTV_MASK))
	}
	binary.LittleEndian.PutUint32(f[60:64], crc32.ChecksumIEEE(f[:60]))
	return f
}

// fcScheduleRefresh arms the refresh: FCRTV quanta after an XOFF, if the
// MAC is still in the XOFF state, it sends another (8.2.3.3.4, the flow
// control shadow counter). FCRTV = 0 disables the refresh. The deadline is
// checked whenever the MAC receives a frame and whenever the engine runs
// (each pass when FreeRunning, each Step when Stepped).
func (n *NIC) fcScheduleRefresh() {
	q := n.reg(regs.FCRTV) & regs.FCRTV_MASK
	n.fc.mu.Lock()
	defer n.fc.mu.Unlock()
	if q == 0 || !n.fc.xoff {
		n.fc.refreshAt.Store(0)
		return
	}
	n.fc.refreshAt.Store(n.clock.nowNanoNoLock() + int64(time.Duration(q)*pauseQuantum))
}

// fcTick sends a due XOFF refresh. It reports whether it sent a frame.
func (n *NIC) fcTick(wait bool) bool {
	if at := n.fc.refreshAt.Load(); at != 0 && n.clock.nowNanoNoLock() >= at {
		n.fc.mu.Lock()
		if n.fc.refreshAt.CompareAndSwap(at, 0) && n.fc.xoff && n.linkFCTx() {
			n.fc.pending.Store(pendXOFF)
		}
		n.fc.mu.Unlock()
	}
	return n.fcEmit(wait)
}

// isMACControl reports whether frame (FCS included, at least 64 bytes) is
// a MAC control frame (EtherType 0x8808).
func isMACControl(frame []byte) bool {
	return binary.BigEndian.Uint16(frame[12:14]) == regs.PauseEtherType
}

// receiveMACControl handles a MAC control frame: a PAUSE (opcode 1, to the
// reserved address or the station address) is acted on with MFLCN.RFCE.
// It reports whether the frame goes on to the host (MFLCN.PMCF set, DPF
// clear) and whether the MAC acted on it.
func (n *NIC) receiveMACControl(frame []byte) (pass, acted bool) {
	mflcn := n.reg(regs.MFLCN)
	pass = mflcn&regs.MFLCN_PMCF != 0 && mflcn&regs.MFLCN_DPF == 0
	if binary.BigEndian.Uint16(frame[14:16]) != regs.PauseOpcode || mflcn&regs.MFLCN_RFCE == 0 {
		return pass, false
	}
	da := frame[0:6]
	if [6]byte(da) != regs.PauseDA {
		lo := binary.LittleEndian.Uint32(da[0:4])
		hi := uint32(binary.LittleEndian.Uint16(da[4:6]))
		rah := n.reg(regs.RAH(0))
		if rah&regs.RAH_AV == 0 || rah&0xFFFF != hi || n.reg(regs.RAL(0)) != lo {
			return pass, false
		}
	}
	t := binary.BigEndian.Uint16(frame[16:18])
	if t == 0 {
		n.count(regs.LXONRXCNT, 1)
		n.fc.pausedUntil.Store(0)
		n.kick() // XON: transmission resumes at once
		return pass, true
	}
	n.count(regs.LXOFFRXCNT, 1)
	// A new XOFF restarts the pause timer (3.7.7.1). The clock is read
	// without its lock: this runs under the cable's lock.
	n.fc.pausedUntil.Store(n.clock.nowNanoNoLock() + int64(time.Duration(t)*pauseQuantum))
	return pass, true
}

// txPaused reports whether the link partner's PAUSE holds transmission now;
// a pause that has run out is cleared.
func (n *NIC) txPaused() bool {
	until := n.fc.pausedUntil.Load()
	if until == 0 {
		return false
	}
	if n.clock.nowNanoNoLock() < until {
		return true
	}
	n.fc.pausedUntil.CompareAndSwap(until, 0)
	return false
}

// TxPaused reports whether a PAUSE from the link partner holds this NIC's
// transmit engines now.
func (n *NIC) TxPaused() bool { return n.txPaused() }

// FlowControlXOFF reports whether the MAC is in the XOFF state: it sent an
// XOFF because its receive packet buffer filled to FCRTH[0], and the fill
// has not yet dropped below FCRTL[0].
func (n *NIC) FlowControlXOFF() bool {
	n.fc.mu.Lock()
	defer n.fc.mu.Unlock()
	return n.fc.xoff
}
