// Package ixgbesim is a software model of the Intel 82599 10 GbE controller
// (datasheet rev. 3.3) at register and DMA level: a register file with the
// datasheet's reset values and access kinds, device and link reset, RX and
// TX DMA engines over advanced (and legacy) descriptor rings in DMA memory,
// the receive MAC (FCS check, size checks, L2 filters, RSS), statistics, an
// IOMMU model that refuses and records any access outside the mapped
// memory, and a checker of descriptor ownership that catches a driver
// touching what the device owns.
//
// A NIC satisfies the driver's ixgbe.Device interface structurally, so the
// same driver code runs against it and against a real 82599 through VFIO.
// Two modes: FreeRunning (engines on a goroutine, real time) and Stepped
// (the test moves each engine and a virtual clock; deterministic).
//
// Wires: Connect joins two NICs back to back with fault injection per
// direction (drop, corrupt, duplicate, reorder, delay, link flap);
// trace/pcap.Tap records what a NIC sends and ReplayPcap feeds a capture in;
// package hostlink joins a NIC to the Linux kernel (TAP, AF_PACKET).
//
// Under the race detector the NIC's DMA memory comes from the Go heap (see
// Config.Policy), so that `go test -race` checks the ordering of the
// driver's and the device's descriptor and buffer accesses.
package ixgbesim

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// Link is the wire a NIC transmits on. Frames include the 4-byte FCS, as
// on a real cable. Transmit must not keep frame after it returns.
type Link interface {
	Transmit(frame []byte)
	Up() bool
}

// Config describes a simulated NIC. Zero fields take defaults.
type Config struct {
	Name string           // "sim0" by default
	MAC  net.HardwareAddr // default: locally administered, derived from Name
	Mode Mode
	// Domain is the IOMMU domain; nil gives the NIC a private one. NICs of
	// one domain can DMA each other's buffers, like one VFIO container.
	Domain *Domain
	// Clock overrides the NIC's clock. By default a Stepped NIC uses its
	// domain's virtual clock (so NICs of a domain share time) and a
	// FreeRunning NIC the wall clock.
	Clock *Clock
	// Policy is the NIC's dma.Allocator's hugepage policy. Under the race
	// detector NoHugepages is replaced by dma.GoHeap: the detector does not
	// see mmap'd memory, and with heap memory `go test -race` checks the
	// ordering of descriptor and buffer accesses between driver and device.
	Policy dma.HugepagePolicy
	Trace  *trace.Recorder // nil: no device events recorded
	DevID  uint16          // Dev field of trace events
	LanID  int             // port of the dual-port device (STATUS.LAN_ID)
	// DeviceID is the PCI device ID the NIC reports (IDs): 0 means 0x10FB,
	// the 82599 SFP+ (X520). Any other 82599 ID models that part as far as
	// the registers go (the link comes up the same way).
	DeviceID uint16
	// SFP is the module in the SFP+ cage, read over I2C (i2c.go); the zero
	// value is a 10GBASE-SR optical module. SFPAbsent leaves the cage empty.
	SFP SFPModule
	// EEPROM overrides the NVM image (eeprom.go) the NIC loads its MAC
	// address from and EERD reads: nil builds a valid one (checksum
	// 0xBABA, MAC address, PBA, eTrack ID).
	EEPROM []uint16
	// Schedule makes the device take choices the datasheet allows that
	// expose drivers relying on one timing (schedule.go); zero: none.
	Schedule Schedule

	// Doorbell says who does a free-running NIC's DMA work when a tail
	// write or a cable's frames wake it (run.go): DoorbellAuto, the
	// default, the caller (the driver's goroutine, or the sending NIC's
	// engine) except under the race detector; DoorbellInline the caller
	// always; DoorbellEngine the engine goroutine always. Tracing and a
	// Schedule leave it to the engine goroutine whatever this says.
	Doorbell DoorbellMode

	// Timing of device events (defaults in parentheses).
	ResetDelay    time.Duration // CTRL.RST set to cleared (1 ms)
	AutoReadDelay time.Duration // reset done to EEC.ARD/RDRXCTL.DMAIDONE (1 ms)
	LinkUpDelay   time.Duration // AN restart (or wire up) to LINKS.UP (10 ms)
}

// Defaults for Config's timing fields.
const (
	DefaultResetDelay    = time.Millisecond
	DefaultAutoReadDelay = time.Millisecond
	DefaultLinkUpDelay   = 10 * time.Millisecond
)

// maxFrame is the largest frame the model handles (the 82599's 15.5 KB
// jumbo limit, datasheet 8.2.3.22.13 MAXFRS), FCS included.
const maxFrame = 15872

// NIC is one simulated 82599 port.
type NIC struct {
	cfg    Config
	name   string
	mac    [6]byte
	domain *Domain
	clock  *Clock
	alloc  *dma.Allocator
	tr     *trace.Recorder
	dev    uint16

	cells []atomic.Uint32 // register storage, indexed like table.defs
	pairs []pair64        // 64-bit statistics counters
	h     hotRegs         // cells the data path reads per frame

	unknownReads  atomic.Uint64
	unknownWrites atomic.Uint64
	unknownMu     sync.Mutex
	unknownSeen   map[uint32]int

	mu        sync.Mutex // control path: reset, link, queue enable
	resetting bool
	resetGen  uint64
	macLinkUp atomic.Bool
	anArmed   bool // link trains as soon as the wire is up
	anPending bool // a link-up timer is scheduled
	linkGen   uint64
	link      atomic.Pointer[linkHolder]
	removed   atomic.Bool
	stalled   atomic.Bool
	closed    atomic.Bool
	wake      chan struct{}
	sleeping  atomic.Bool // the free-running engine is about to block on wake
	engineOn  atomic.Bool // the free-running engine runs (Start)
	runMu     sync.Mutex
	running   bool
	stop      chan struct{}
	done      chan struct{}
	rrTx      atomic.Int32                       // next TX queue Step tries first
	txActive  [regs.MaxQueues / 64]atomic.Uint64 // enabled TX queues (bitmap)

	pb   packetBuffer
	intr Interrupts
	nvm  []uint16 // EEPROM image (eeprom.go)
	sfp  i2cBus   // SFP+ module's serial ID EEPROM behind I2CCTL (i2c.go)
	fc   flowCtl
	rxq  [regs.MaxQueues]rxQueue
	txq  [regs.MaxQueues]txQueue

	sched schedState // Config.Schedule at run time (schedule.go)

	vmu        sync.Mutex
	violations []Violation
	vdropped   int
}

type linkHolder struct {
	l Link
	// ft is l as an fcsTransmitter (nil if it is not one), and direct
	// ft.direct(): worked out once at Attach, not per frame.
	ft     fcsTransmitter
	direct bool
}

// hotRegs are the cells of the registers the receive MAC reads for every
// frame, looked up once when the NIC is made (cells never move), so that
// the data path loads them without a register-table lookup each.
type hotRegs struct {
	rxctrl, secrxctrl, hlreg0, vlnctrl, rxcsum, rxpbsize0, fctrl, mrqc, fccfg, fcrth0 *atomic.Uint32
}

func (n *NIC) initHot() {
	n.h = hotRegs{
		rxctrl: n.cell(regs.RXCTRL), secrxctrl: n.cell(regs.SECRXCTRL), hlreg0: n.cell(regs.HLREG0),
		vlnctrl: n.cell(regs.VLNCTRL), rxcsum: n.cell(regs.RXCSUM), rxpbsize0: n.cell(regs.RXPBSIZE(0)),
		fctrl: n.cell(regs.FCTRL), mrqc: n.cell(regs.MRQC), fccfg: n.cell(regs.FCCFG), fcrth0: n.cell(regs.FCRTH(0)),
	}
	for q := range n.rxq {
		n.rxq[q].rdt = n.cell(regs.RDT(q))
		n.rxq[q].srrctl = n.cell(regs.SRRCTL(q))
	}
	for q := range n.txq {
		n.txq[q].tdt = n.cell(regs.TDT(q))
		n.txq[q].tdwbal = n.cell(regs.TDWBAL(q))
	}
}

// pair64 is a 64-bit statistics counter read through two 32-bit registers.
type pair64 struct {
	v       atomic.Uint64
	latched atomic.Uint64
	valid   atomic.Bool
}

var nicCount atomic.Uint64

// New creates a simulated NIC, powered on and out of reset: registers at
// their reset values, EEPROM auto-read and DMA init done, and the link
// training as soon as a Link is attached and up.
func New(cfg Config) (*NIC, error) {
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("sim%d", nicCount.Add(1)-1)
	}
	if cfg.Mode != FreeRunning && cfg.Mode != Stepped {
		return nil, fmt.Errorf("ixgbesim: %s: unknown mode %d", cfg.Name, cfg.Mode)
	}
	n := &NIC{cfg: cfg, name: cfg.Name, tr: cfg.Trace, dev: cfg.DevID}
	n.sched.init(cfg.Schedule, cfg.Mode)
	switch {
	case cfg.MAC == nil:
		// Locally administered unicast address derived from the name.
		h := sha256.Sum256([]byte(cfg.Name))
		copy(n.mac[:], h[:6])
		n.mac[0] = n.mac[0]&^0x01 | 0x02
	case len(cfg.MAC) == 6 && cfg.MAC[0]&1 == 0:
		copy(n.mac[:], cfg.MAC)
	default:
		return nil, fmt.Errorf("ixgbesim: %s: MAC %v is not a 6-byte unicast address", cfg.Name, cfg.MAC)
	}
	if n.cfg.ResetDelay <= 0 {
		n.cfg.ResetDelay = DefaultResetDelay
	}
	if n.cfg.AutoReadDelay <= 0 {
		n.cfg.AutoReadDelay = DefaultAutoReadDelay
	}
	if n.cfg.LinkUpDelay <= 0 {
		n.cfg.LinkUpDelay = DefaultLinkUpDelay
	}
	if n.cfg.DeviceID == 0 {
		n.cfg.DeviceID = 0x10FB
	}
	if err := n.initNVM(); err != nil {
		return nil, fmt.Errorf("ixgbesim: %s: %w", cfg.Name, err)
	}
	n.sfp.init(cfg.SFP)
	n.domain = cfg.Domain
	if n.domain == nil {
		n.domain = NewDomain()
	}
	switch {
	case cfg.Clock != nil:
		if cfg.Clock.Virtual() != (cfg.Mode == Stepped) {
			return nil, errors.New("ixgbesim: " + cfg.Name + ": Config.Clock does not match Config.Mode (Stepped needs a virtual clock)")
		}
		n.clock = cfg.Clock
	case cfg.Mode == Stepped:
		n.clock = n.domain.clock
	default:
		n.clock = NewClock(FreeRunning)
	}
	policy := cfg.Policy
	if raceEnabled && policy == dma.NoHugepages {
		policy = dma.GoHeap
	}
	n.alloc = dma.NewAllocator(n.domain, policy)
	n.cells = make([]atomic.Uint32, len(table.defs))
	n.pairs = make([]pair64, table.pairs)
	n.unknownSeen = make(map[uint32]int)
	n.wake = make(chan struct{}, 1)
	n.pb.init()
	n.intr.init(n)
	for q := range n.rxq {
		n.rxq[q].n = n
		n.rxq[q].idx = q
		n.rxq[q].dir = trace.RX
	}
	for q := range n.txq {
		n.txq[q].n = n
		n.txq[q].idx = q
		n.txq[q].dir = trace.TX
	}
	n.initHot()
	n.mu.Lock()
	n.loadResetValuesLocked()
	n.cellOr(regs.EEC, regs.EEC_ARD)
	n.cellOr(regs.RDRXCTL, regs.RDRXCTL_DMAIDONE)
	n.anArmed = true
	n.mu.Unlock()
	return n, nil
}

// Name returns the NIC's name.
func (n *NIC) Name() string { return n.name }

// IDs returns the PCI vendor and device IDs the NIC models (Intel,
// Config.DeviceID), as vfio.Device reads them from configuration space.
func (n *NIC) IDs() (vendor, device uint16, err error) { return 0x8086, n.cfg.DeviceID, nil }

// MAC returns the NIC's permanent address (what RAL[0]/RAH[0] hold after
// reset, read from the EEPROM).
func (n *NIC) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), n.mac[:]...) }

// DMA returns the allocator of memory mapped into the NIC's IOMMU domain.
func (n *NIC) DMA() *dma.Allocator { return n.alloc }

// Domain returns the NIC's IOMMU domain.
func (n *NIC) Domain() *Domain { return n.domain }

// Clock returns the NIC's clock: pass it to the driver as its ixgbe.Clock.
func (n *NIC) Clock() *Clock { return n.clock }

// Mode returns the NIC's mode.
func (n *NIC) Mode() Mode { return n.cfg.Mode }

// Faults returns the IOMMU faults this NIC caused.
func (n *NIC) Faults() []Fault {
	var out []Fault
	for _, f := range n.domain.Faults() {
		if f.Device == n.name {
			out = append(out, f)
		}
	}
	return out
}

// Attach connects the NIC to a wire. The link trains (LINKS.UP after
// LinkUpDelay) once the wire is up.
func (n *NIC) Attach(l Link) {
	h := &linkHolder{l: l}
	if ft, ok := l.(fcsTransmitter); ok {
		h.ft, h.direct = ft, ft.direct()
	}
	n.link.Store(h)
	n.pollLink()
}

func (n *NIC) wireUp() bool {
	h := n.link.Load()
	return h != nil && h.l != nil && h.l.Up()
}

func (n *NIC) wire() Link {
	if h := n.link.Load(); h != nil {
		return h.l
	}
	return nil
}

// ---- register access ----

func (n *NIC) cell(reg uint32) *atomic.Uint32 {
	_, i := table.lookup(reg)
	return &n.cells[i] // i == 0 is a scratch cell for unknown offsets
}

func (n *NIC) reg(reg uint32) uint32    { return n.cell(reg).Load() }
func (n *NIC) cellOr(reg, bits uint32)  { n.cell(reg).Or(bits) }
func (n *NIC) cellAnd(reg, bits uint32) { n.cell(reg).And(bits) }

// cellOrOld sets bits in reg and returns its old value.
func (n *NIC) cellOrOld(reg, bits uint32) uint32 { return n.cell(reg).Or(bits) }

// count adds v to the 32-bit statistics register reg.
func (n *NIC) count(reg uint32, v uint32) { n.cell(reg).Add(v) }

// count64 adds v to 64-bit statistics pair p.
func (n *NIC) count64(p int, v uint64) { n.pairs[p].v.Add(v) }

// Read32 implements ixgbe.Device: an atomic load of a 32-bit register with
// the register's read side effects. A removed device reads all ones.
func (n *NIC) Read32(reg uint32) uint32 {
	if n.removed.Load() {
		return 0xFFFFFFFF
	}
	n.clock.maybeRunDue()
	d, i := table.lookup(reg)
	if d == nil {
		n.noteUnknown(reg, false)
		return 0
	}
	c := &n.cells[i]
	switch d.acc {
	case accRW, accRO:
		return c.Load()
	case accWO:
		return 0
	case accRC:
		n.foldRxStats()
		return c.Swap(0)
	case accRC64Lo:
		n.foldRxStats()
		p := &n.pairs[d.pair]
		v := p.v.Load()
		p.latched.Store(v)
		p.valid.Store(true)
		return uint32(v)
	case accRC64Hi:
		n.foldRxStats()
		p := &n.pairs[d.pair]
		if p.valid.Swap(false) {
			v := p.latched.Load()
			p.v.Add(-v) // counts that arrived after the low read survive
			return uint32(v >> 32)
		}
		return uint32(p.v.Swap(0) >> 32)
	}
	return n.readSpecial(d, c)
}

// Write32 implements ixgbe.Device: an atomic store to a 32-bit register
// with its write side effects. A removed device ignores writes.
func (n *NIC) Write32(reg uint32, v uint32) {
	if n.removed.Load() {
		return
	}
	d, i := table.lookup(reg)
	if d == nil {
		n.noteUnknown(reg, true)
		return
	}
	c := &n.cells[i]
	switch d.acc {
	case accRW:
		storeMasked(c, v, d.wmask)
		return
	case accRO, accRC, accRC64Lo, accRC64Hi:
		return // read-only, and statistics ignore writes (8.2.3.23)
	case accWO:
		c.Store(v)
		return
	}
	n.writeSpecial(d, c, v)
}

func storeMasked(c *atomic.Uint32, v, mask uint32) {
	for {
		old := c.Load()
		nv := old&^mask | v&mask
		if c.CompareAndSwap(old, nv) {
			return
		}
	}
}

func (n *NIC) noteUnknown(reg uint32, write bool) {
	if write {
		n.unknownWrites.Add(1)
	} else {
		n.unknownReads.Add(1)
	}
	n.unknownMu.Lock()
	if len(n.unknownSeen) < 1024 {
		n.unknownSeen[reg]++
	}
	n.unknownMu.Unlock()
}

// UnknownAccesses returns how many reads and writes hit offsets the model
// does not know (they read 0 and writes are dropped), and the offsets.
func (n *NIC) UnknownAccesses() (reads, writes uint64, offsets []uint32) {
	n.unknownMu.Lock()
	defer n.unknownMu.Unlock()
	for off := range n.unknownSeen {
		offsets = append(offsets, off)
	}
	return n.unknownReads.Load(), n.unknownWrites.Load(), offsets
}

func (n *NIC) readSpecial(d *regDef, c *atomic.Uint32) uint32 {
	switch d.sp {
	case spEICR:
		// 8.2.3.5.1: reading EICR clears it (the model implements the
		// plain clear-on-read behaviour, GPIE.OCD = 0).
		return n.readEICR(c)
	case spEICS, spEIMC, spEICSEX, spEIMCEX:
		return 0 // write-only
	case spEIMSEX:
		if d.queue == 0 {
			// Bits 15:0 are EIMS's bits 15:0 (one mask, two addresses).
			return c.Load()&^0xFFFF | n.reg(regs.EIMS)&0xFFFF
		}
		return c.Load()
	case spEERD:
		return c.Load()
	case spSWSM:
		return n.readSWSM(c)
	case spI2CCTL:
		return n.sfp.read()
	case spSTATUS:
		v := c.Load() &^ (regs.STATUS_LAN_ID | regs.STATUS_LINKUP)
		v |= uint32(n.cfg.LanID&3) << 2
		if n.reg(regs.CTRL)&regs.CTRL_PCIE_MDE != 0 {
			// Master disable (CTRL.PCIE_MDE, 5.2.5.3.2): the model has no
			// requests in flight, so GIO Master Enable Status clears at once.
			v &^= regs.STATUS_GIO_MASTER_E
		}
		n.pollLink()
		if n.macLinkUp.Load() {
			v |= regs.STATUS_LINKUP
		}
		return v
	case spLINKS:
		n.pollLink()
		return n.linksValue()
	case spRXDCTL:
		v := c.Load()
		if n.rxq[d.queue].enabled.Load() {
			v |= regs.RXDCTL_ENABLE
		} else {
			v &^= regs.RXDCTL_ENABLE
		}
		return v
	case spTXDCTL:
		v := c.Load()
		if n.txq[d.queue].enabled.Load() {
			v |= regs.TXDCTL_ENABLE
		} else {
			v &^= regs.TXDCTL_ENABLE
		}
		return v
	}
	return c.Load()
}

// linksValue composes LINKS (8.2.3.22.19): LINK_UP (b30), LINK_SPEED
// (b29:28 = 11b, 10 Gb/s), and the MAC's link status (b7).
func (n *NIC) linksValue() uint32 {
	if n.macLinkUp.Load() {
		return regs.LINKS_UP | regs.LINKS_SPEED_10G | 1<<7
	}
	return regs.LINKS_SPEED_10G
}

func (n *NIC) writeSpecial(d *regDef, c *atomic.Uint32, v uint32) {
	switch d.sp {
	case spCTRL:
		n.writeCTRL(c, v)
	case spSTATUS, spLINKS:
		// read-only
	case spEICR:
		c.And(^v) // write 1 clears
	case spEICS:
		n.raise(v) // software-set causes fire like hardware ones (8.2.3.5.3)
	case spEIMS:
		// Unmasking a pending cause sends its message (7.3.1).
		if c.Or(v)&v != v {
			n.intrEval(v)
		}
	case spEIMC:
		n.cellAnd(regs.EIMS, ^v)
	case spEIMCEX:
		n.cell(regs.EIMS_EX(int(d.queue))).And(^v)
		if d.queue == 0 {
			n.cellAnd(regs.EIMS, ^(v & 0xFFFF))
		}
	case spEIMSEX:
		// Vectors 16-63 are not modelled (intr.go): their mask bits are
		// kept and read back; bits 15:0 of EIMS_EX[0] are EIMS's.
		c.Or(v)
		if lo := v & 0xFFFF; d.queue == 0 && lo != 0 {
			if n.cellOrOld(regs.EIMS, lo)&lo != lo {
				n.intrEval(lo)
			}
		}
	case spEICSEX:
		if d.queue == 0 {
			n.raise(v & 0xFFFF)
		}
	case spEERD:
		n.writeEERD(c, v)
	case spSWSM:
		storeMasked(c, v, d.wmask)
	case spI2CCTL:
		n.sfp.write(v)
	case spAUTOC:
		n.writeAUTOC(c, v)
	case spRDH:
		n.rxq[d.queue].writeHead(c, v)
	case spRDT:
		n.rxq[d.queue].writeTail(c, v)
		n.rxDoorbell()
	case spRXDCTL:
		n.writeRXDCTL(int(d.queue), c, v)
	case spTDH:
		n.txq[d.queue].writeHead(c, v)
	case spTDT:
		n.txq[d.queue].writeTail(c, v)
		n.txDoorbell(int(d.queue))
	case spTXDCTL:
		n.writeTXDCTL(int(d.queue), c, v)
	case spUnmodelled:
		c.Store(v)
		if what := table.unmodelled[d.queue](v); what != "" {
			n.violate(Violation{Kind: Unmodelled, Index: v,
				Detail: fmt.Sprintf("%s is not modelled (%s written with %#08x; the model behaves as if it were off)", what, d.name, v)})
		}
	}
}

// kick wakes the free-running engine if it is blocked (or about to
// block); a running engine sees the work on its next pass, so the common
// case costs one atomic load.
func (n *NIC) kick() {
	if !n.sleeping.Load() {
		return
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// ---- reset (datasheet 4.2, 4.6.3.2) ----

// loadResetValuesLocked puts every register at its reset value and loads
// the MAC address from the "EEPROM" into RAL[0]/RAH[0] with AV set.
func (n *NIC) loadResetValuesLocked() {
	for i := 1; i < len(table.defs); i++ {
		n.cells[i].Store(table.defs[i].reset)
	}
	for i := range n.pairs {
		n.pairs[i].v.Store(0)
		n.pairs[i].valid.Store(false)
	}
	m := n.mac
	n.cell(regs.RAL(0)).Store(uint32(m[0]) | uint32(m[1])<<8 | uint32(m[2])<<16 | uint32(m[3])<<24)
	n.cell(regs.RAH(0)).Store(uint32(m[4]) | uint32(m[5])<<8 | regs.RAH_AV)
	// ARD and DMAIDONE are set when auto-read and DMA init complete.
	n.cellAnd(regs.EEC, ^uint32(regs.EEC_ARD))
	n.cellAnd(regs.RDRXCTL, ^uint32(regs.RDRXCTL_DMAIDONE))
}

func (n *NIC) writeCTRL(c *atomic.Uint32, v uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v&regs.CTRL_RST != 0 {
		n.deviceResetLocked()
		// The other bits of this write are lost in the reset.
		return
	}
	storeMasked(c, v&^uint32(regs.CTRL_RST_MASK), ^uint32(regs.CTRL_RST))
	if v&regs.CTRL_LNK_RST != 0 && !n.resetting {
		// Link reset (8.2.3.1.1): the MAC link drops and retrains;
		// LNK_RST self-clears when the link reset is done.
		c.Or(regs.CTRL_LNK_RST)
		n.restartLinkLocked(regs.CTRL, regs.CTRL_LNK_RST)
	}
}

// deviceResetLocked performs a software reset (CTRL.RST, 4.2.1.6.1):
// queues stop, the packet buffers empty, every register returns to its
// reset value, and CTRL.RST reads 1 until the reset completes after
// ResetDelay; EEC.ARD and RDRXCTL.DMAIDONE follow after AutoReadDelay, and
// the link trains again.
func (n *NIC) deviceResetLocked() {
	n.resetGen++
	n.linkGen++
	gen := n.resetGen
	n.resetting = true
	n.anPending = false
	n.anArmed = false
	for q := range n.rxq {
		n.rxq[q].disable(true)
	}
	for q := range n.txq {
		n.txq[q].disable(true)
	}
	n.pb.clear()
	n.fc.reset()
	n.loadResetValuesLocked()
	n.macLinkUp.Store(false)
	n.cell(regs.CTRL).Store(regs.CTRL_RST)
	n.clock.AfterFunc(n.cfg.ResetDelay, func() { n.resetDone(gen) })
}

func (n *NIC) resetDone(gen uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if gen != n.resetGen || !n.resetting {
		return
	}
	n.resetting = false
	n.cellAnd(regs.CTRL, ^uint32(regs.CTRL_RST))
	n.clock.AfterFunc(n.cfg.AutoReadDelay, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if gen != n.resetGen || n.resetting {
			return
		}
		n.cellOr(regs.EEC, regs.EEC_ARD)
		n.cellOr(regs.RDRXCTL, regs.RDRXCTL_DMAIDONE)
	})
	// After reset the MAC auto-negotiates with the AUTOC defaults.
	n.anArmed = true
	n.scheduleLinkUpLocked(0, 0)
}

// Resetting reports whether a device reset is in progress.
func (n *NIC) Resetting() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.resetting
}

// ---- link (4.6.4, 8.2.3.22) ----

func (n *NIC) writeAUTOC(c *atomic.Uint32, v uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	storeMasked(c, v, ^uint32(regs.AUTOC_AN_RESTART))
	if v&regs.AUTOC_AN_RESTART != 0 && !n.resetting {
		// AN_RESTART self-clears once the new negotiation completes.
		c.Or(regs.AUTOC_AN_RESTART)
		n.restartLinkLocked(regs.AUTOC, regs.AUTOC_AN_RESTART)
	}
}

// restartLinkLocked drops the link and retrains it; selfClear (a bit of
// register selfClearReg) reads 1 until training finishes.
func (n *NIC) restartLinkLocked(selfClearReg, selfClear uint32) {
	n.linkGen++
	n.anPending = false
	n.setLinkLocked(false)
	n.anArmed = true
	n.scheduleLinkUpLocked(selfClearReg, selfClear)
}

// scheduleLinkUpLocked starts link training: LinkUpDelay later the link is
// up if the wire is.
func (n *NIC) scheduleLinkUpLocked(selfClearReg, selfClear uint32) {
	if n.anPending || n.resetting {
		return
	}
	n.anPending = true
	gen := n.linkGen
	n.clock.AfterFunc(n.cfg.LinkUpDelay, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if selfClear != 0 {
			n.cellAnd(selfClearReg, ^selfClear)
		}
		if gen != n.linkGen {
			return
		}
		n.anPending = false
		if n.wireUp() && !n.resetting {
			n.setLinkLocked(true)
		}
	})
}

// setLinkLocked changes the MAC link state, raising EICR.LSC on a change
// (8.2.3.5.1).
func (n *NIC) setLinkLocked(up bool) {
	if n.macLinkUp.Swap(up) != up {
		n.raise(regs.EICR_LSC)
		if up {
			n.kick()
		}
	}
}

// pollLink follows the wire: the link drops when the wire goes down, and
// training starts when the wire comes (back) up.
func (n *NIC) pollLink() {
	if n.removed.Load() {
		return
	}
	wire := n.wireUp()
	up := n.macLinkUp.Load()
	if wire == up {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case up && !wire:
		n.linkGen++
		n.anPending = false
		n.setLinkLocked(false)
		n.count(regs.MLFC, 1) // the receiver lost the signal: a local fault (stats.go)
	case !up && wire && n.anArmed && !n.resetting:
		n.scheduleLinkUpLocked(0, 0)
	}
}

// LinkUp reports the MAC's link state (LINKS.UP).
func (n *NIC) LinkUp() bool { return n.macLinkUp.Load() }

// ---- device faults ----

// Remove simulates surprise removal: every register read returns
// 0xFFFFFFFF, writes are ignored, DMA stops, nothing is received.
func (n *NIC) Remove() {
	n.removed.Store(true)
	n.kick()
}

// Removed reports whether Remove was called.
func (n *NIC) Removed() bool { return n.removed.Load() }

// StallDMA freezes (or releases) every DMA engine: descriptors are neither
// fetched nor written back, as with a hung DMA engine; the receive MAC still
// fills the packet buffer until it overflows.
func (n *NIC) StallDMA(stalled bool) {
	n.stalled.Store(stalled)
	n.kick()
}

// Close stops the engines and releases the NIC's DMA memory (unmapping it
// from the domain). The NIC must not be used afterwards.
func (n *NIC) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	n.Stop()
	n.intr.close()
	if h := n.link.Load(); h != nil {
		if c, ok := h.l.(*cableEnd); ok {
			c.detach(n)
		}
	}
	if err := n.alloc.Close(); err != nil {
		return fmt.Errorf("ixgbesim: %s: close: %w", n.name, err)
	}
	return nil
}

func (n *NIC) now() time.Time { return n.clock.Now() }
