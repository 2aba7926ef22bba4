package igb

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/igb/regs"
	"github.com/verinic/verinic/trace"
)

// Limits and defaults of Config.
const (
	// MaxQueues is the number of RX or TX queues the driver runs: 8, as
	// Linux's igb does on the 82576 (IGB_MAX_RX_QUEUES), which leaves one
	// MSI-X vector per RX queue within the 10 QEMU's igb offers.
	MaxQueues = 8
	// MinRingSize, MaxRingSize and DefaultRingSize are the engine's
	// (advring: RDLEN and TDLEN are multiples of 128 bytes, datasheet
	// 8.10.x, and sizes are powers of two).
	MinRingSize     = advring.MinRingSize
	MaxRingSize     = advring.MaxRingSize
	DefaultRingSize = advring.DefaultRingSize
	// DefaultLinkTimeout is how long New waits for the link when
	// Config.LinkTimeout is zero. QEMU's PHY completes auto-negotiation
	// 500 ms (virtual time) after the restart; a real copper PHY takes a
	// few seconds.
	DefaultLinkTimeout = 10 * time.Second
	// pollTimeout bounds every wait for a register bit.
	pollTimeout = time.Second
	// maxFrame is the longest frame sent without TSO, FCS excluded (RCTL.LPE
	// is off: 1518 bytes on the wire).
	maxFrame = 1514
)

// Config configures a NIC; every zero field takes its default.
//
// The queue, ring and pool fields are checked by the engine
// (advring.Geometry.Normalize, the same rules as ixgbe's): 1..MaxQueues
// queues each way (default 1; more than one RX queue turns RSS on, MRQC,
// datasheet 7.1.1.x), ring sizes a power of two in
// MinRingSize..MaxRingSize (default DefaultRingSize), and for each RX
// queue's pool dma's defaults but Buffers, max(dma.DefaultBuffers,
// 2*RxRingSize) and more than RxRingSize, a BufSize of 1024 or more
// (SRRCTL.BSIZEPACKET counts 1 KB; a longer frame spans descriptors and is
// dropped and counted) and an even Headroom.
//
// LinkTimeout bounds New's wait for the link (0: DefaultLinkTimeout;
// negative: no wait); a link still down then is not an error (see Link).
// Promiscuous sets RCTL.UPE and MPE (otherwise the NIC's own address and
// broadcasts only). VLANStrip sets CTRL.VME, the 82576's one switch for
// every queue: tags move to the packets' Meta. Trace (nil: none) and
// DevID are the engine's (advring.Config); Clock times the register waits
// (RealClock).
type Config struct {
	RxQueues, TxQueues     int
	RxRingSize, TxRingSize int
	Mempool                dma.MempoolConfig
	LinkTimeout            time.Duration
	Promiscuous, VLANStrip bool
	Trace                  *trace.Recorder
	DevID                  uint16
	Clock                  Clock
}

// The data path's errors are the ring engine's (advring), so that errors.Is
// works across families: a device gone (registers read all ones), a queue
// out of range, a packet TxBatch cannot send, a NIC closed or stopped.
var ErrDeviceGone, ErrBadQueue, ErrBadPacket, ErrClosed, ErrStopped = advring.ErrDeviceGone, advring.ErrBadQueue, advring.ErrBadPacket, advring.ErrClosed, advring.ErrStopped

// Errors of the control path.
var (
	ErrNoInterrupts = errors.New("igb: interrupts not enabled (EnableInterrupts)")
	// ErrBuffersOutstanding is returned (wrapped) by Close when a pool still
	// had buffers out.
	ErrBuffersOutstanding = errors.New("buffers still out of the pool")
)

// LinkStatus is the state of the link (STATUS, datasheet 8.2.2).
type LinkStatus struct {
	Up         bool
	SpeedMbps  int // 10, 100 or 1000; 0 when down
	FullDuplex bool
}

// String formats the status: "up 1000 Mb/s full duplex" or "down".
func (l LinkStatus) String() string {
	if !l.Up {
		return "down"
	}
	d := "half"
	if l.FullDuplex {
		d = "full"
	}
	return fmt.Sprintf("up %d Mb/s %s duplex", l.SpeedMbps, d)
}

// NIC is an initialized 82576 port. RxBatch and TxBatch on one queue must be
// called by one goroutine at a time (the ownership rule of ixgbe.NIC and
// link.Link); the other methods are safe for concurrent use.
type NIC struct {
	dev   Device
	name  string
	clock Clock
	cfg   Config
	fam   *advring.Family
	ring  advring.Config
	port  advring.Port
	w     advring.Waiter // register waits (pollTimeout each)
	pools []*dma.Mempool

	// mu serializes the control path: filters, statistics, interrupts,
	// Stop and Close.
	mu    sync.Mutex
	stats rawStats
	stuck bool // a Stop timed out waiting for a batch: the rings were left alone

	irq  Interrupts // nil while polling
	info DeviceInfo
}

// Family is the 82576 as the ring engine sees it: its queue registers and
// the write-back bits that differ from the 82599's (igb/regs).
var Family = advring.Family{
	Name: "82576",
	Regs: advring.Regs{
		RDBAL: regs.RDBAL, RDBAH: regs.RDBAH, RDLEN: regs.RDLEN, RDH: regs.RDH, RDT: regs.RDT,
		TDBAL: regs.TDBAL, TDBAH: regs.TDBAH, TDLEN: regs.TDLEN, TDH: regs.TDH, TDT: regs.TDT,
	},
	Layout: advring.Layout{RXE: 31, IPE: 30, L4E: 29, IPCS: 6, L4CS: 5, VP: 3},
}

// New resets dev and initializes it (datasheet 4.5, from memory: interrupts
// off, device reset, EEPROM, link set-up, statistics, receive and transmit
// set-up), starts the queues and, unless LinkTimeout is negative, waits for
// the link.
func New(dev Device, cfg Config) (*NIC, error) {
	switch {
	case dev == nil:
		return nil, errors.New("igb: New: nil device")
	case dev.DMA() == nil:
		return nil, fmt.Errorf("igb: %s: device has no DMA allocator", dev.Name())
	}
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("igb: %s: %w", dev.Name(), err)
	}
	n := &NIC{dev: dev, name: dev.Name(), clock: cfg.Clock, cfg: cfg, fam: &Family}
	n.ring = advring.Config{Family: n.fam, Dev: dev, Alloc: dev.DMA(), Trace: cfg.Trace, DevID: cfg.DevID, Gone: n.checkGone}
	n.w = advring.Waiter{Dev: dev, Clock: cfg.Clock, Timeout: pollTimeout, Prefix: "igb: " + n.name, Gone: n.checkGone}
	if err := n.checkSupported(); err != nil {
		return nil, err
	}
	err := n.init()
	if err == nil && cfg.LinkTimeout >= 0 {
		// A link that stays down is not an error (a cable may come later);
		// a device that went away is.
		if _, lerr := n.WaitForLink(cfg.LinkTimeout); errors.Is(lerr, ErrDeviceGone) {
			err = fmt.Errorf("igb: %s: waiting for link: %w", n.name, lerr)
		}
	}
	if err != nil {
		n.abandon()
		return nil, err
	}
	return n, nil
}

// normalize fills the defaults; the engine checks the queue, ring and pool
// shape (advring.Geometry).
func (c *Config) normalize() error {
	g := advring.Geometry{RxQueues: c.RxQueues, TxQueues: c.TxQueues, RxRingSize: c.RxRingSize, TxRingSize: c.TxRingSize, Mempool: c.Mempool}
	err := g.Normalize(MaxQueues)
	c.RxQueues, c.TxQueues, c.RxRingSize, c.TxRingSize, c.Mempool = g.RxQueues, g.TxQueues, g.RxRingSize, g.TxRingSize, g.Mempool
	c.Clock = cmp.Or(c.Clock, RealClock)
	c.LinkTimeout = cmp.Or(c.LinkTimeout, DefaultLinkTimeout)
	return err
}

// Name returns the device's name.
func (n *NIC) Name() string { return n.name }

// NumRxQueues and NumTxQueues return the number of queues.
func (n *NIC) NumRxQueues() int { return len(n.port.Rx) }
func (n *NIC) NumTxQueues() int { return len(n.port.Tx) }

// RxRingSize and TxRingSize return the configured ring sizes.
func (n *NIC) RxRingSize() int { return n.cfg.RxRingSize }
func (n *NIC) TxRingSize() int { return n.cfg.TxRingSize }

// RxPool returns the buffer pool of RX queue q (nil if out of range).
func (n *NIC) RxPool(q int) *dma.Mempool {
	if q < 0 || q >= len(n.pools) {
		return nil
	}
	return n.pools[q]
}

// Allocator returns the allocator of DMA memory the device reaches (the
// stack's link.Allocator: TSO buffers).
func (n *NIC) Allocator() *dma.Allocator { return n.dev.DMA() }

// RxBatch receives up to len(pkts) frames from queue q (advring.Port.RxBatch).
func (n *NIC) RxBatch(q int, pkts []dma.Packet) (int, error) { return n.port.RxBatch(q, pkts) }

// TxBatch queues frames for sending on queue q (advring.Port.TxBatch).
func (n *NIC) TxBatch(q int, pkts []dma.Packet) (int, error) { return n.port.TxBatch(q, pkts) }

// MaxFrameSize returns the longest frame TxBatch sends without TSO (FCS
// excluded).
func (n *NIC) MaxFrameSize() int { return maxFrame }

// Offloads returns the offloads the driver performs with the 82576 (it
// satisfies the stack's link.Offloader): the ring engine's (datasheet 7.1.x and 7.2.x, from memory), the
// RSS hash with more than one RX queue and the stripped tag with
// Config.VLANStrip; see advring.Port.Offloads.
func (n *NIC) Offloads() dma.Offloads { return n.port.Offloads() }

// checkGone reads STATUS, which a present device never reads as all ones
// (its reserved bits read 0, datasheet 8.2.2), and marks the NIC gone if it
// does.
func (n *NIC) checkGone() bool {
	if n.port.State.Is(advring.Gone) {
		return true
	}
	if n.dev.Read32(regs.STATUS) == allOnes {
		n.port.State.Set(advring.Gone)
		return true
	}
	return false
}

const allOnes = 0xFFFFFFFF

// MAC returns the NIC's MAC address (receive address 0).
func (n *NIC) MAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	binary.LittleEndian.PutUint32(mac[0:4], n.dev.Read32(regs.RAL(0)))
	binary.LittleEndian.PutUint16(mac[4:6], uint16(n.dev.Read32(regs.RAH(0))))
	return mac
}

// SetMAC programs receive address 0 with mac and marks it valid (RAH.AV).
// mac must be a 6-byte unicast address.
func (n *NIC) SetMAC(mac net.HardwareAddr) error {
	var err error
	switch {
	case len(mac) != 6:
		err = fmt.Errorf("need 6 bytes, got %d", len(mac))
	case mac[0]&1 != 0:
		err = errors.New("a multicast address cannot be a station address")
	}
	if err == nil {
		n.mu.Lock()
		if n.checkGone() {
			err = ErrDeviceGone
		} else {
			n.writeRAR(0, mac)
		}
		n.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("igb: %s: set MAC %v: %w", n.name, mac, err)
	}
	return nil
}

// writeRAR programs receive address r (datasheet 8.10.x), clearing AV
// first so that the filter never matches a half-written address.
func (n *NIC) writeRAR(r int, mac net.HardwareAddr) {
	n.dev.Write32(regs.RAH(r), 0)
	n.dev.Write32(regs.RAL(r), binary.LittleEndian.Uint32(mac[0:4]))
	n.dev.Write32(regs.RAH(r), uint32(binary.LittleEndian.Uint16(mac[4:6]))|regs.RAHAV)
}

// promiscuousBits are RCTL's unicast and multicast promiscuous bits
// (datasheet 8.10.1).
const promiscuousBits = regs.RCTL_UPE | regs.RCTL_MPE

// SetPromiscuous turns unicast and multicast promiscuous mode on or off.
// Broadcasts are always accepted (RCTL.BAM).
func (n *NIC) SetPromiscuous(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.checkGone() {
		rctl := n.dev.Read32(regs.RCTL)&^promiscuousBits | regs.RCTL_BAM
		if on {
			rctl |= promiscuousBits
		}
		n.dev.Write32(regs.RCTL, rctl)
		n.cfg.Promiscuous = on
	}
}

// Promiscuous reports whether promiscuous mode is on.
func (n *NIC) Promiscuous() bool {
	return n.dev.Read32(regs.RCTL)&promiscuousBits == promiscuousBits
}

// Link reads the link state from STATUS (datasheet 8.2.2: LU, SPEED, FD). A
// device that is gone reads as down.
func (n *NIC) Link() LinkStatus {
	v := n.dev.Read32(regs.STATUS)
	if v == allOnes {
		n.port.State.Set(advring.Gone)
		return LinkStatus{}
	}
	return decodeStatus(v)
}

func decodeStatus(v uint32) LinkStatus {
	if v&regs.STATUS_LU == 0 {
		return LinkStatus{}
	}
	s := LinkStatus{Up: true, SpeedMbps: 10, FullDuplex: v&regs.STATUS_FD != 0}
	switch {
	case v&regs.STATUS_SPD_1G != 0:
		s.SpeedMbps = 1000
	case v&regs.STATUS_SPD_100 != 0:
		s.SpeedMbps = 100
	}
	return s
}

// linkPollInterval is how often WaitForLink reads STATUS.
const linkPollInterval = 10 * time.Millisecond

// WaitForLink polls STATUS.LU until the link is up or timeout passes, and
// returns the last status.
func (n *NIC) WaitForLink(timeout time.Duration) (LinkStatus, error) {
	deadline := n.clock.Now().Add(timeout)
	for {
		st := n.Link()
		switch {
		case n.port.State.Is(advring.Closed):
			return LinkStatus{}, ErrClosed
		case n.port.State.Is(advring.Gone):
			return LinkStatus{}, fmt.Errorf("igb: %s: STATUS reads 0xFFFFFFFF: %w", n.name, ErrDeviceGone)
		case st.Up:
			return st, nil
		case !n.clock.Now().Before(deadline):
			return st, fmt.Errorf("igb: %s: timeout after %v waiting for STATUS.LU (bit 1) (datasheet 8.2.2): the PHY has not completed auto-negotiation (is a cable or a peer there?)", n.name, timeout)
		}
		n.clock.Sleep(linkPollInterval)
	}
}

// Stop disables the queues and the receive and transmit units, waits (up to
// one second) for the TX rings to drain, and takes every buffer back from
// the rings. Memory stays allocated until Close. Batches running on other
// goroutines end first; later ones return ErrStopped.
func (n *NIC) Stop() error {
	n.mu.Lock()
	err := n.stopLocked()
	n.mu.Unlock()
	return err
}

func (n *NIC) stopLocked() error {
	if n.port.State.Is(advring.Stopped) && !n.stuck {
		return nil
	}
	n.port.State.Set(advring.Stopped)
	if err := n.port.Quiesce(n.name); err != nil {
		n.stuck = true
		return err
	}
	n.stuck = false
	var errs []error
	if !n.checkGone() {
		if err := n.port.Drain(n.clock, pollTimeout, n.checkGone); err != nil {
			errs = append(errs, fmt.Errorf("igb: %s: %w", n.name, err))
		}
	}
	if !n.port.State.Is(advring.Gone) {
		for i := range n.port.Rx {
			n.w.ClearBits(regs.RXDCTL(i), regs.RXDCTL_ENABLE)
			errs = append(errs, n.w.WaitClear(regs.RXDCTL(i), regs.RXDCTL_ENABLE, fmt.Sprintf("RXDCTL[%d].ENABLE (bit 25)", i), "8.10.x"))
		}
		for i := range n.port.Tx {
			n.w.ClearBits(regs.TXDCTL(i), regs.TXDCTL_ENABLE)
			errs = append(errs, n.w.WaitClear(regs.TXDCTL(i), regs.TXDCTL_ENABLE, fmt.Sprintf("TXDCTL[%d].ENABLE (bit 25)", i), "8.12.x"))
		}
		n.w.ClearBits(regs.RCTL, regs.RCTL_EN)
		n.w.ClearBits(regs.TCTL, regs.TCTL_EN)
	}
	n.port.ReclaimAll()
	return errors.Join(errs...)
}

// Close stops the NIC, gives the interrupt vectors back to their waiters,
// and releases the rings and the RX pools. It reports ErrBuffersOutstanding
// (wrapped) when a pool still had buffers out, but releases everything.
func (n *NIC) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.port.State.Is(advring.Closed) {
		return nil
	}
	if st := n.port.SetNAPI(nil); st != nil {
		st.Close()
	}
	n.irq = nil
	err := n.stopLocked()
	if n.stuck {
		return fmt.Errorf("igb: %s: close: rings and pools not released: %w", n.name, err)
	}
	var outstanding []string
	for i, p := range n.pools {
		if p.InUse() != 0 {
			outstanding = append(outstanding, fmt.Sprintf("RX pool %d: %d of %d", i, p.InUse(), p.Size()))
		}
	}
	n.port.State.Set(advring.Closed)
	if rerr := n.releaseMemory(); err == nil {
		err = rerr
	}
	if len(outstanding) > 0 && err == nil {
		err = fmt.Errorf("igb: %s: close: %v: %w", n.name, outstanding, ErrBuffersOutstanding)
	}
	return err
}

// abandon undoes a failed initialization: a device reset stops every DMA
// engine that was started, then the memory is freed.
func (n *NIC) abandon() {
	if !n.port.State.Is(advring.Gone) && len(n.port.Rx)+len(n.port.Tx) > 0 {
		n.dev.Write32(regs.CTRL, n.dev.Read32(regs.CTRL)|regs.CTRL_RST)
		_ = n.w.WaitClear(regs.CTRL, regs.CTRL_RST, "CTRL.RST (bit 26)", "8.2.1")
	}
	n.port.State.Set(advring.Stopped | advring.Closed)
	_ = n.releaseMemory()
}

func (n *NIC) releaseMemory() error {
	var errs []error
	errs = append(errs, n.port.FreeRings())
	for _, p := range n.pools {
		errs = append(errs, p.Release())
	}
	n.pools = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("igb: %s: release memory: %w", n.name, err)
	}
	return nil
}
