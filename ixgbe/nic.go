package ixgbe

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// Limits and defaults of Config.
const (
	// MaxQueues is the number of RX or TX queues the driver runs: one per
	// per-queue statistics counter set of the 82599 (datasheet 8.2.3.23,
	// QPRC[0..15]), so that every queue is counted on its own.
	MaxQueues = regs.StatQueues
	// MinRingSize and MaxRingSize bound a descriptor ring (the engine's:
	// RDLEN and TDLEN must be multiples of 128 bytes, 8 descriptors,
	// datasheet 8.2.3.8.3; ring sizes are powers of two so that index
	// arithmetic is a mask).
	MinRingSize     = advring.MinRingSize
	MaxRingSize     = advring.MaxRingSize
	DefaultRingSize = advring.DefaultRingSize
	// DefaultLinkTimeout is how long New waits for the link when
	// Config.LinkTimeout is zero (ixy waits 10 s too).
	DefaultLinkTimeout = 10 * time.Second
	// pollTimeout bounds every wait for a register bit during
	// initialization and shutdown (TinyNF uses 1 s as well; the datasheet
	// gives no figure).
	pollTimeout = time.Second
)

// Config configures a NIC. The zero value of every field selects its
// default.
type Config struct {
	// RxQueues and TxQueues: number of queues, 1..MaxQueues (default 1).
	// With more than one RX queue, RSS spreads flows over them
	// (datasheet 7.1.2.8).
	RxQueues, TxQueues int
	// RxRingSize and TxRingSize: descriptors per ring, a power of two in
	// MinRingSize..MaxRingSize (default DefaultRingSize).
	RxRingSize, TxRingSize int
	// Mempool describes the buffer pool the driver creates for each RX
	// queue. Zero fields take dma's defaults, except Buffers, which
	// defaults to max(dma.DefaultBuffers, 2*RxRingSize) and must exceed
	// RxRingSize. SRRCTL.BSIZEPACKET is programmed from BufSize in whole
	// KB (1 to 16, datasheet 8.2.3.8.7), so BufSize must be at least 1024
	// and is best a multiple of 1024; a frame longer than that spans
	// descriptors and is dropped (counted in RxMultiDescDrops). Jumbo
	// frames are not enabled: the MAC drops frames over 1518 bytes (ROC).
	// Headroom must be even.
	Mempool dma.MempoolConfig
	// Clock times the driver's register polls (default RealClock). Tests
	// with a stepped simulator pass its virtual clock.
	Clock Clock
	// Trace receives ring events; nil records nothing (the data path then
	// pays one nil check per event site). The events and their order are
	// the ring engine's: see advring.Config.Trace.
	Trace *trace.Recorder
	// DevID is the device number stamped on trace events.
	DevID uint16
	// LinkTimeout is how long New waits for the link to come up: 0 means
	// DefaultLinkTimeout, negative means do not wait. A link still down
	// at the end is not an error (a cable may be plugged in later); check
	// Link.
	LinkTimeout time.Duration
	// Promiscuous makes the NIC accept every unicast and multicast frame
	// (FCTRL.UPE|MPE). The default, false, accepts frames for the NIC's
	// own MAC address and broadcasts only (FCTRL.BAM). ixy always turns
	// promiscuous mode on; a forwarder should set this.
	Promiscuous bool
	// FlowControl turns on IEEE 802.3x link flow control in both
	// directions (datasheet 3.7.7): the NIC sends an XOFF PAUSE frame when
	// its receive packet buffer fills to within FlowControlHeadroom of its
	// end, and an XON once it has drained by FlowControlHysteresis more;
	// it honours the PAUSE frames its link partner sends (and does not
	// pass them up). A fast sender then cannot overrun a slow receiver's
	// packet buffer (MPC stays 0); the price is that a receiver that stops
	// polling stalls its partner's transmission, and through a switch
	// possibly other traffic. Default off, as in ixy: a poll-mode
	// application is expected to keep up, and silent stalls are harder to
	// diagnose than counted drops. (Linux's ixgbe and DPDK default to full
	// flow control; set this to match them.) With flow control on, frames
	// wait in the packet buffer for free descriptors (SRRCTL.DROP_EN is
	// cleared), so one queue that is not polled holds up all of them.
	FlowControl bool
	// VLANStrip strips 802.1Q tags on receive (RXDCTL.VME on every RX
	// queue, datasheet 8.2.3.8.9): the tag moves to the packet's Meta
	// (dma.RxVLAN, Meta.VLAN) and the frame reaches the caller untagged.
	// SetVLANFilter restricts which VLAN IDs are received.
	VLANStrip bool

	// bugs makes the driver commit deliberate protocol errors; set only
	// through WithBugs, in builds with the ixgbebugs tag (bugs.go).
	bugs ringBugs
}

// Errors returned by the driver. They are sentinels so that the data path
// returns them without allocating; test them with errors.Is. The data-path
// errors are the ring engine's (advring), shared by every family.
var (
	// ErrDeviceGone reports a surprise removal: the device reads all ones
	// (a PCIe read to a device that is no longer there completes with
	// 0xFFFFFFFF). Every call on the NIC returns it from then on.
	ErrDeviceGone = advring.ErrDeviceGone
	// ErrBadQueue reports a queue number out of range.
	ErrBadQueue = advring.ErrBadQueue
	// ErrBadPacket reports a packet TxBatch cannot send: no pool, a length
	// out of range, a frame that does not lie within its buffer, or
	// offloads that cannot apply. TxBatch stops at it; the caller keeps it.
	ErrBadPacket = advring.ErrBadPacket
	// ErrClosed reports a call on a closed NIC.
	ErrClosed = advring.ErrClosed
	// ErrStopped reports a data-path call on a stopped NIC.
	ErrStopped = advring.ErrStopped
	// ErrQueueBusy is returned by RxBatch or TxBatch when another goroutine
	// is inside a batch on the same queue (each queue must be polled by one
	// goroutine at a time).
	ErrQueueBusy = advring.ErrQueueBusy
	// ErrQueueInUse is returned (wrapped) by Stop and Close when a queue's
	// batch did not end within a few seconds: the rings and pools are left
	// allocated (leaked) rather than freed under it.
	ErrQueueInUse = advring.ErrQueueInUse
	// ErrBuffersOutstanding is returned (wrapped) by Close when a pool the
	// driver created still had buffers out: held by the application, or
	// sitting in another NIC's TX ring that was not stopped first.
	ErrBuffersOutstanding = errors.New("buffers still out of the pool")
)

// LinkStatus is the state of the link (LINKS register, datasheet 8.2.3.22).
type LinkStatus struct {
	Up        bool
	SpeedMbps int // 100, 1000 or 10000; 0 when down or unknown
}

// String formats the status for humans: "up 10000 Mb/s" or "down".
func (l LinkStatus) String() string {
	if !l.Up {
		return "down"
	}
	return fmt.Sprintf("up %d Mb/s", l.SpeedMbps)
}

// NIC is an initialized 82599 port. RxBatch and TxBatch on one queue must be
// called by one goroutine at a time; different queues may be polled by
// different goroutines concurrently. The other methods are safe for
// concurrent use.
//
// Buffer ownership rule: a dma.Mempool is not safe for concurrent use, and
// TxBatch frees each sent buffer into the pool it came from when it cleans
// the ring. A goroutine that forwards frames received on RX queue q of one
// NIC to TX queue t of another (or the same) NIC must therefore be the only
// goroutine that calls RxBatch on q and TxBatch on t: the TX cleaning of t
// then frees into RxPool(q) from the goroutine that owns that pool.
type NIC struct {
	dev   Device
	name  string
	clock Clock
	cfg   Config
	trace *trace.Recorder

	// port is the ring engine's state: the RX and TX queues, their gates
	// (Stop and Close wait for running batches before touching the rings,
	// advring/gate.go) and the halt state (advring.Gone, Stopped, Closed:
	// once any is set, RxBatch and TxBatch refuse to touch the rings).
	port advring.Port

	// mu serializes the control path: MAC and filter changes, statistics,
	// Stop and Close.
	mu    sync.Mutex
	stats rawStats

	// irq is the interrupt mode (EnableInterrupts); nil while polling.
	irq atomic.Pointer[irqState]

	// stuck (under mu) says a wait for running batches timed out: the rings
	// were left alone.
	stuck bool

	// info is what init learnt about the device: IDs, EEPROM, SFP+ module
	// (info.go).
	info DeviceInfo
	// maxFrame is the longest frame TxBatch sends without TSO, FCS
	// excluded: MAXFRS.MFS with HLREG0.JUMBOEN, else 1518 (datasheet
	// 8.2.3.22.13), less the 4-byte FCS the MAC appends.
	maxFrame int
}

// New resets dev and runs the full initialization sequence of datasheet
// 4.6.3-4.6.8: interrupts off, global reset, EEPROM and DMA init done, link
// setup, statistics cleared, receive and transmit initialization, queues
// started, MAC filters, and (unless LinkTimeout is negative) a wait for the
// link. The returned NIC's queues are running.
func New(dev Device, cfg Config) (*NIC, error) {
	if dev == nil {
		return nil, errors.New("ixgbe: New: nil device")
	}
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("ixgbe: %s: %w", dev.Name(), err)
	}
	if dev.DMA() == nil {
		return nil, fmt.Errorf("ixgbe: %s: device has no DMA allocator", dev.Name())
	}
	n := &NIC{dev: dev, name: dev.Name(), clock: cfg.Clock, cfg: cfg, trace: cfg.Trace}
	if err := n.checkSupported(); err != nil {
		return nil, err
	}
	if err := n.init(); err != nil {
		n.abandon()
		return nil, err
	}
	if cfg.LinkTimeout >= 0 {
		if _, err := n.WaitForLink(cfg.LinkTimeout); errors.Is(err, ErrDeviceGone) {
			n.abandon()
			return nil, fmt.Errorf("ixgbe: %s: waiting for link: %w", n.name, err)
		}
	}
	return n, nil
}

// abandon undoes a failed initialization: a global reset (4.6.3.2) stops
// every DMA engine that was already started, so that the rings and pools
// can be freed without the device writing into them afterwards.
func (n *NIC) abandon() {
	if !n.is(stateGone) && len(n.port.Rx)+len(n.port.Tx) > 0 {
		n.dev.Write32(regs.CTRL, n.dev.Read32(regs.CTRL)|regs.CTRL_RST_MASK)
		n.waitClear(regs.CTRL, regs.CTRL_RST_MASK, "CTRL.RST|LNK_RST (bits 26, 3)", "4.6.3.2")
	}
	n.setState(stateStopped | stateClosed)
	n.releaseMemory()
}

// normalize fills defaults and validates; the queue, ring and pool rules
// are the engine's (advring.Geometry), the same for both families.
func (c *Config) normalize() error {
	g := advring.Geometry{RxQueues: c.RxQueues, TxQueues: c.TxQueues, RxRingSize: c.RxRingSize, TxRingSize: c.TxRingSize, Mempool: c.Mempool}
	if err := g.Normalize(MaxQueues); err != nil {
		return err
	}
	c.RxQueues, c.TxQueues, c.RxRingSize, c.TxRingSize, c.Mempool = g.RxQueues, g.TxQueues, g.RxRingSize, g.TxRingSize, g.Mempool
	if c.Clock == nil {
		c.Clock = RealClock
	}
	if c.LinkTimeout == 0 {
		c.LinkTimeout = DefaultLinkTimeout
	}
	return nil
}

// Name returns the device's name.
func (n *NIC) Name() string { return n.name }

// NumRxQueues returns the number of RX queues.
func (n *NIC) NumRxQueues() int { return len(n.port.Rx) }

// NumTxQueues returns the number of TX queues.
func (n *NIC) NumTxQueues() int { return len(n.port.Tx) }

// Offloads returns the offloads the driver performs with the 82599 (it
// satisfies the stack's link.Offloader): the ring engine's (datasheet 7.1.11, 7.2.3.2.3), the
// RSS hash with more than one RX queue and the stripped tag with
// Config.VLANStrip; see advring.Port.Offloads.
func (n *NIC) Offloads() dma.Offloads { return n.port.Offloads() }

// SetVLANFilter admits tagged frames of exactly the VLAN IDs vids (VFTA,
// VLNCTRL.VFE: datasheet 7.1.1.2, 8.2.3.7.2, 8.2.3.7.15); untagged frames
// are not affected. With no IDs the filter is off and every tagged frame is
// received. Call it from one goroutine at a time.
func (n *NIC) SetVLANFilter(vids ...uint16) error {
	var table [128]uint32
	for _, v := range vids {
		if v > 4095 {
			return fmt.Errorf("ixgbe: VLAN ID %d out of range 0..4095", v)
		}
		table[v>>5] |= 1 << (v & 31)
	}
	for i, w := range table {
		n.dev.Write32(regs.VFTA(i), w)
	}
	if len(vids) == 0 {
		n.clearBits(regs.VLNCTRL, regs.VLNCTRL_VFE)
	} else {
		n.setBits(regs.VLNCTRL, regs.VLNCTRL_VFE)
	}
	return nil
}

// RxPool returns the buffer pool of RX queue q (nil if q is out of range).
// The goroutine that polls queue q owns it.
func (n *NIC) RxPool(q int) *dma.Mempool {
	if q < 0 || q >= len(n.port.Rx) {
		return nil
	}
	return n.port.Rx[q].Pool()
}

// Allocator returns the allocator of DMA memory the device can reach, for
// pools of frames built by the application.
func (n *NIC) Allocator() *dma.Allocator { return n.dev.DMA() }

// RxRingSize and TxRingSize return the configured ring sizes.
func (n *NIC) RxRingSize() int { return n.cfg.RxRingSize }
func (n *NIC) TxRingSize() int { return n.cfg.TxRingSize }

const (
	stateGone    = advring.Gone    // the device read all ones
	stateStopped = advring.Stopped // Stop ran: the rings hold no buffers
	stateClosed  = advring.Closed  // Close ran: the rings are freed
)

func (n *NIC) setState(bit uint32) { n.port.State.Set(bit) }
func (n *NIC) is(bit uint32) bool  { return n.port.State.Is(bit) }

// haltedErr returns the error for a call on a NIC whose state is not zero.
func (n *NIC) haltedErr() error { return n.port.State.Err() }

// checkGone reads STATUS, which can never read all ones on a present device
// (its reserved bits read 0, datasheet 8.2.3.1.2), and marks the NIC gone if
// it does.
func (n *NIC) checkGone() bool {
	if n.is(stateGone) {
		return true
	}
	if n.dev.Read32(regs.STATUS) == allOnes {
		n.setState(stateGone)
		return true
	}
	return false
}

const allOnes = 0xFFFFFFFF

// MAC returns the NIC's MAC address (receive address 0, RAL[0]/RAH[0]).
func (n *NIC) MAC() net.HardwareAddr {
	lo := n.dev.Read32(regs.RAL(0))
	hi := n.dev.Read32(regs.RAH(0))
	return net.HardwareAddr{byte(lo), byte(lo >> 8), byte(lo >> 16), byte(lo >> 24), byte(hi), byte(hi >> 8)}
}

// SetMAC programs receive address 0 with mac and marks it valid (RAH.AV,
// datasheet 8.2.3.7.9). mac must be a 6-byte unicast address.
func (n *NIC) SetMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("ixgbe: %s: set MAC %v: need 6 bytes, got %d", n.name, mac, len(mac))
	}
	if mac[0]&1 != 0 {
		return fmt.Errorf("ixgbe: %s: set MAC %v: a multicast address cannot be a station address", n.name, mac)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.checkGone() {
		return fmt.Errorf("ixgbe: %s: set MAC: %w", n.name, ErrDeviceGone)
	}
	lo := uint32(mac[0]) | uint32(mac[1])<<8 | uint32(mac[2])<<16 | uint32(mac[3])<<24
	hi := uint32(mac[4]) | uint32(mac[5])<<8 | regs.RAH_AV
	// Clear AV first so that the filter never matches a half-written address.
	n.dev.Write32(regs.RAH(0), 0)
	n.dev.Write32(regs.RAL(0), lo)
	n.dev.Write32(regs.RAH(0), hi)
	return nil
}

// SetPromiscuous turns unicast and multicast promiscuous mode on or off
// (FCTRL.UPE and FCTRL.MPE, datasheet 8.2.3.7.1). Broadcasts are always
// accepted (FCTRL.BAM).
func (n *NIC) SetPromiscuous(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.checkGone() {
		return
	}
	n.setPromiscuousLocked(on)
}

func (n *NIC) setPromiscuousLocked(on bool) {
	v := n.dev.Read32(regs.FCTRL)
	if on {
		v |= regs.FCTRL_UPE | regs.FCTRL_MPE
	} else {
		v &^= regs.FCTRL_UPE | regs.FCTRL_MPE
	}
	n.dev.Write32(regs.FCTRL, v|regs.FCTRL_BAM)
	n.cfg.Promiscuous = on
}

// Promiscuous reports whether promiscuous mode is on.
func (n *NIC) Promiscuous() bool {
	return n.dev.Read32(regs.FCTRL)&(regs.FCTRL_UPE|regs.FCTRL_MPE) == regs.FCTRL_UPE|regs.FCTRL_MPE
}

// Link reads the link state from LINKS (datasheet 8.2.3.22.19; decoding as
// ixy's get_link_speed). A device that is gone reads as down.
func (n *NIC) Link() LinkStatus {
	v := n.dev.Read32(regs.LINKS)
	if v == allOnes {
		n.setState(stateGone)
		return LinkStatus{}
	}
	return decodeLinks(v)
}

func decodeLinks(v uint32) LinkStatus {
	if v&regs.LINKS_UP == 0 {
		return LinkStatus{}
	}
	switch v & regs.LINKS_SPEED_MASK {
	case regs.LINKS_SPEED_100M:
		return LinkStatus{Up: true, SpeedMbps: 100}
	case regs.LINKS_SPEED_1G:
		return LinkStatus{Up: true, SpeedMbps: 1000}
	case regs.LINKS_SPEED_10G:
		return LinkStatus{Up: true, SpeedMbps: 10000}
	}
	return LinkStatus{Up: true}
}

// linkPollInterval is how often WaitForLink reads LINKS (ixy: 100 ms; a
// shorter interval costs nothing and makes tests quicker).
const linkPollInterval = 10 * time.Millisecond

// WaitForLink polls LINKS until the link is up or timeout passes, and returns
// the last status. On timeout the error names the register and bit.
func (n *NIC) WaitForLink(timeout time.Duration) (LinkStatus, error) {
	start := n.clock.Now()
	for {
		if n.is(stateClosed) {
			return LinkStatus{}, ErrClosed
		}
		st := n.Link()
		if n.is(stateGone) {
			return LinkStatus{}, fmt.Errorf("ixgbe: %s: LINKS reads 0xFFFFFFFF: %w", n.name, ErrDeviceGone)
		}
		if st.Up {
			return st, nil
		}
		if n.clock.Now().Sub(start) >= timeout {
			return st, fmt.Errorf("ixgbe: %s: timeout after %v waiting for LINKS.LINK_UP (bit 30) (datasheet 8.2.3.22.19)", n.name, timeout)
		}
		n.clock.Sleep(min(linkPollInterval, max(timeout, time.Millisecond)))
	}
}

// Stop disables every queue and the receive and transmit units, waits (up
// to one second) for the TX rings to drain, and takes every buffer back from
// the rings: sent TX buffers go back to their pools, RX buffers to the RX
// pools. The memory stays allocated until Close, so a NIC that still holds
// frames from this NIC's pools in its TX ring is not disturbed. Calling Stop
// again does nothing. RxBatch and TxBatch may be running on other
// goroutines: Stop waits for the batches in progress to end, and every later
// call returns ErrStopped (gate.go). A batch that does not end within a few
// seconds (a poller that panicked inside one) makes Stop return
// ErrQueueInUse without touching the rings; call it again later.
func (n *NIC) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopLocked()
}

// Close stops the NIC (Stop), then releases the rings and the RX pools. Stop
// every NIC that may hold this NIC's buffers in its TX ring before closing
// this one. Pollers still calling RxBatch or TxBatch get ErrStopped or
// ErrClosed; the released pools refuse every call (dma.ErrPoolReleased). Close reports ErrBuffersOutstanding (wrapped) when a pool still
// had buffers out, but releases everything regardless.
func (n *NIC) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.is(stateClosed) {
		return nil
	}
	if st := n.irq.Swap(nil); st != nil {
		n.port.SetNAPI(nil)
		st.napi.Close()
	}
	err := n.stopLocked()
	if n.stuck {
		// A batch is still running (ErrQueueInUse): freeing the rings
		// and pools under it is what this must never do. Leave them; a
		// later Close tries again.
		return fmt.Errorf("ixgbe: %s: close: rings and pools not released: %w", n.name, err)
	}
	var outstanding []string
	for i, q := range n.port.Rx {
		if p := q.Pool(); p.InUse() != 0 {
			outstanding = append(outstanding, fmt.Sprintf("RX pool %d: %d of %d", i, p.InUse(), p.Size()))
		}
	}
	n.setState(stateClosed)
	if rerr := n.releaseMemory(); err == nil {
		err = rerr
	}
	if len(outstanding) > 0 && err == nil {
		err = fmt.Errorf("ixgbe: %s: close: %v: %w", n.name, outstanding, ErrBuffersOutstanding)
	}
	return err
}

// releaseMemory frees the rings and pools.
func (n *NIC) releaseMemory() error {
	errs := []error{n.port.FreeRings()}
	for _, q := range n.port.Rx {
		errs = append(errs, q.Pool().Release())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ixgbe: %s: release memory: %w", n.name, err)
	}
	return nil
}

// RxBatch receives up to len(pkts) frames from queue q into pkts and returns
// how many (advring.Port.RxBatch). The caller owns the returned packets:
// free them (Packet.Free) or pass them to TxBatch. Each descriptor handed up
// is refilled with a fresh buffer from the queue's pool, and RDT is written
// once per call (datasheet 7.1.9). A frame spanning several descriptors
// (larger than the pool's data room) or flagged with a MAC error is dropped
// and counted. If the pool runs dry the call returns what it has; the rest
// stays in the ring (and the device drops when the ring is full).
func (n *NIC) RxBatch(q int, pkts []dma.Packet) (int, error) { return n.port.RxBatch(q, pkts) }

// TxBatch queues up to len(pkts) frames for sending on queue q and returns
// how many it took (advring.Port.TxBatch): the first k packets now belong to
// the driver, which frees each to its own pool once the device has sent it.
// It returns fewer when the ring is full (the caller keeps the rest: retry
// or free them), and stops with ErrBadPacket at a packet it cannot send.
// Completed descriptors are reclaimed first, in batches; TDT is written once
// per call.
func (n *NIC) TxBatch(q int, pkts []dma.Packet) (int, error) { return n.port.TxBatch(q, pkts) }
