//go:build linux

// Package hostlink joins a simulated 82599 (ixgbesim) to the Linux kernel:
// a TAP device (TAP) or an AF_PACKET socket bound to an interface such as
// one end of a veth pair (Raw). Both implement ixgbesim.Link: frames the
// simulated NIC transmits (with their 4-byte FCS, as on a cable) have the FCS
// checked and stripped and go to the kernel; frames the kernel sends out of
// the interface are padded to the Ethernet minimum, given an FCS (CRC-32,
// IEEE 802.3 clause 3.2.9, least significant byte first on the wire) and
// handed to the NIC's Receive from a reader goroutine.
//
// Netns creates private network namespaces for tests and tools, so that the
// kernel peers a simulated NIC talks to never touch the host's own network.
package hostlink

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"time"
)

// Receiver takes frames from the wire, FCS included, and reports whether it
// accepted them. (*ixgbesim.NIC).Receive is one; it must not keep the slice.
type Receiver interface {
	Receive(frame []byte) bool
}

// ReceiverFunc adapts a function to Receiver.
type ReceiverFunc func(frame []byte) bool

// Receive calls f.
func (f ReceiverFunc) Receive(frame []byte) bool { return f(frame) }

// Frame sizes (IEEE 802.3 clause 3.2).
const (
	fcsLen      = 4
	minFrame    = 60 // without FCS; shorter frames are padded before the FCS is added
	headerLen   = 14
	maxReadSize = 65535 + 18 // the largest frame any MTU can produce, tag included
)

// Stats counts what a link did. All counters only grow.
type Stats struct {
	RxFrames   uint64 // frames read from the kernel and offered to the receiver
	RxBytes    uint64 // their bytes, FCS included
	RxRefused  uint64 // of those, refused by the receiver (link down, filtered, full, …)
	RxPadded   uint64 // frames shorter than 60 bytes, padded
	RxErrors   uint64 // read errors other than shutdown
	RxOutgoing uint64 // our own transmissions echoed back by AF_PACKET, ignored
	// RxCsumNotReady counts frames AF_PACKET flagged as carrying an
	// unfinished checksum (TP_STATUS_CSUMNOTREADY): the sending interface
	// still has transmit checksum offload on (see DisableOffloads).
	RxCsumNotReady uint64
	TxFrames       uint64 // frames written to the kernel
	TxBytes        uint64 // their bytes, FCS stripped
	TxBadFCS       uint64 // frames from the NIC whose FCS did not verify, dropped
	TxRunts        uint64 // frames too short to hold a header and an FCS, dropped
	TxErrors       uint64 // write errors, or transmissions after Close
}

type counters struct {
	rxFrames, rxBytes, rxRefused, rxPadded, rxErrors, rxOutgoing atomic.Uint64
	rxCsumNotReady                                               atomic.Uint64
	txFrames, txBytes, txBadFCS, txRunts, txErrors               atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(), RxRefused: c.rxRefused.Load(),
		RxPadded: c.rxPadded.Load(), RxErrors: c.rxErrors.Load(), RxOutgoing: c.rxOutgoing.Load(),
		RxCsumNotReady: c.rxCsumNotReady.Load(),
		TxFrames:       c.txFrames.Load(), TxBytes: c.txBytes.Load(), TxBadFCS: c.txBadFCS.Load(),
		TxRunts: c.txRunts.Load(), TxErrors: c.txErrors.Load(),
	}
}

// AppendFCS pads frame (without FCS) to the 60-byte minimum, as an Ethernet
// transmitter does, appends its FCS and returns the result. It reuses frame's
// capacity when there is room.
func AppendFCS(frame []byte) []byte {
	for len(frame) < minFrame {
		frame = append(frame, 0)
	}
	return binary.LittleEndian.AppendUint32(frame, crc32.ChecksumIEEE(frame))
}

// CheckFCS reports whether the last 4 bytes of frame are the FCS of the rest.
func CheckFCS(frame []byte) bool {
	if len(frame) < fcsLen {
		return false
	}
	n := len(frame) - fcsLen
	return crc32.ChecksumIEEE(frame[:n]) == binary.LittleEndian.Uint32(frame[n:])
}

// deliver finishes a frame read into buf[:n] (room for padding and FCS
// behind it), hands it to r and counts the outcome.
func deliver(c *counters, r Receiver, buf []byte, n int) {
	if n < minFrame {
		clear(buf[n:minFrame])
		n = minFrame
		c.rxPadded.Add(1)
	}
	binary.LittleEndian.PutUint32(buf[n:], crc32.ChecksumIEEE(buf[:n]))
	n += fcsLen
	c.rxFrames.Add(1)
	c.rxBytes.Add(uint64(n))
	if !r.Receive(buf[:n]) {
		c.rxRefused.Add(1)
	}
}

// strip checks a frame from the NIC and returns it without its FCS, or false
// (counted) when it must not reach the kernel.
func strip(c *counters, frame []byte) ([]byte, bool) {
	if len(frame) < headerLen+fcsLen {
		c.txRunts.Add(1)
		return nil, false
	}
	if !CheckFCS(frame) {
		c.txBadFCS.Add(1)
		return nil, false
	}
	return frame[:len(frame)-fcsLen], true
}

// backoff paces a reader that keeps failing (a TAP device deleted under it
// returns EBADFD on every read), so that it never spins: 1 ms doubling to
// 100 ms, back to nothing after a success.
type backoff struct{ d time.Duration }

func (b *backoff) fail() {
	b.d = min(max(2*b.d, time.Millisecond), 100*time.Millisecond)
	time.Sleep(b.d)
}

func (b *backoff) ok() { b.d = 0 }
