package ixgbe

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

// fakeDev is a minimal in-test stand-in for an 82599: a flat register file
// with the few behaviours the init sequence waits for (self-clearing reset,
// EEPROM and DMA init done, queue enables reading back, link up), and
// descriptor rings that complete instantly when their tail is written:
//   - TX: every descriptor between TDH and the new TDT completes at once,
//     and those with RS get DD (the device's write-back with WTHRESH 0);
//   - RX (when autoRx is set): every descriptor handed to the device gets a
//     frame of rxLen bytes (DD|EOP) at once, as if the wire were infinitely
//     fast. Without autoRx, deliver() writes frames on demand.
//
// It does almost nothing per descriptor, so benchmarks against it measure
// the driver's own cost. It is used from one goroutine (the test's).
type fakeDev struct {
	space *dma.IOVASpace
	alloc *dma.Allocator
	reg   [regs.BAR0Size / 4]uint32

	autoRx bool
	txHold bool // do not complete TX descriptors
	// rxStuck makes RXDCTL.ENABLE never read back (a queue that does not
	// start).
	rxStuck bool
	rxLen   uint32
	gone    atomic.Bool

	rx [MaxQueues]fakeRing
	tx [MaxQueues]fakeRing

	mu    sync.Mutex
	log   []regAccess // register accesses when logging is on
	logOn bool
}

type fakeRing struct {
	w32      []uint32
	size     uint32
	head     uint32
	tail     uint32
	received uint64 // RX frames written
	sent     uint64 // TX descriptors completed
}

type regAccess struct {
	write bool
	reg   uint32
	val   uint32
}

func newFakeDev(t testing.TB) *fakeDev {
	space := dma.NewIOVASpace(0x7_0000_0000, 48)
	f := &fakeDev{space: space, alloc: dma.NewAllocator(space, dma.NoHugepages), rxLen: 60}
	f.reg[regs.EEC/4] = regs.EEC_ARD | regs.EEC_PRES
	f.reg[regs.RDRXCTL/4] = regs.RDRXCTL_DMAIDONE
	f.reg[regs.LINKS/4] = regs.LINKS_UP | regs.LINKS_SPEED_10G
	f.reg[regs.RAL(0)/4] = 0x33221100
	f.reg[regs.RAH(0)/4] = 0x5544 | regs.RAH_AV
	f.reg[regs.STATUS/4] = regs.STATUS_LINKUP
	if t != nil {
		t.Cleanup(func() { f.alloc.Close() })
	}
	return f
}

func (f *fakeDev) Name() string        { return "fake0" }
func (f *fakeDev) DMA() *dma.Allocator { return f.alloc }
func (f *fakeDev) remove()             { f.gone.Store(true) }
func (f *fakeDev) startLog()           { f.mu.Lock(); f.logOn = true; f.mu.Unlock() }
func (f *fakeDev) accesses() []regAccess {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]regAccess(nil), f.log...)
}

func (f *fakeDev) Read32(reg uint32) uint32 {
	if f.gone.Load() {
		return 0xFFFFFFFF
	}
	v := f.reg[reg/4]
	switch {
	case reg == regs.EICR:
		f.reg[reg/4] = 0
	case reg >= 0x1000 && reg < 0x1400 && reg%0x40 == 0x10: // RDH
		v = f.rx[(reg-0x1000)/0x40].head
	case reg >= 0x6000 && reg < 0x6400 && reg%0x40 == 0x10: // TDH
		v = f.tx[(reg-0x6000)/0x40].head
	case f.rxStuck && reg >= 0x1000 && reg < 0x1400 && reg%0x40 == 0x28: // RXDCTL
		v &^= regs.RXDCTL_ENABLE
	}
	if f.logOn {
		f.mu.Lock()
		f.log = append(f.log, regAccess{reg: reg, val: v})
		f.mu.Unlock()
	}
	return v
}

func (f *fakeDev) Write32(reg, v uint32) {
	if f.gone.Load() {
		return
	}
	if f.logOn {
		f.mu.Lock()
		f.log = append(f.log, regAccess{write: true, reg: reg, val: v})
		f.mu.Unlock()
	}
	switch {
	case reg == regs.CTRL:
		v &^= regs.CTRL_RST_MASK | regs.CTRL_PCIE_MDE // reset completes at once
	case reg == regs.EIMC:
		return
	case reg >= 0x1000 && reg < 0x1400:
		q := &f.rx[(reg-0x1000)/0x40]
		switch reg % 0x40 {
		case 0x08: // RDLEN
			q.size = v / regs.DescSize
		case 0x10: // RDH
			q.head = v
		case 0x18: // RDT
			q.tail = v
			f.reg[reg/4] = v
			q.attach(f, f.reg[(reg-0x18)/4], f.reg[(reg-0x14)/4])
			if f.autoRx {
				f.deliverRing(q, -1)
			}
			return
		}
	case reg >= 0x6000 && reg < 0x6400:
		q := &f.tx[(reg-0x6000)/0x40]
		switch reg % 0x40 {
		case 0x08:
			q.size = v / regs.DescSize
		case 0x10:
			q.head = v
		case 0x18: // TDT: complete everything up to the new tail.
			q.tail = v
			f.reg[reg/4] = v
			q.attach(f, f.reg[(reg-0x18)/4], f.reg[(reg-0x14)/4])
			if q.w32 == nil || f.txHold {
				return
			}
			// Plain stores: the fake runs on the driver's goroutine, so
			// there is no concurrent access to order, and the benchmark
			// should charge it as little as possible (the ring state in
			// locals, the wrap a compare rather than a division).
			w, h, t, size := q.w32, q.head, q.tail, q.size
			if t >= size {
				return // a tail past the ring: nothing the device would take
			}
			n := uint64(0)
			for h != t {
				// DD only where RS asks for it: with WTHRESH 0 the
				// device writes back RS descriptors only (datasheet
				// 7.2.3.5, 8.2.3.9.10).
				if w[4*h+2]&regs.TXD_DCMD_RS != 0 {
					w[4*h+3] = regs.TXD_STAT_DD
				}
				if h++; h == size {
					h = 0
				}
				n++
			}
			q.head = h
			q.sent += n
			return
		}
	}
	f.reg[reg/4] = v
}

// attach resolves the ring memory once the base registers are set.
func (q *fakeRing) attach(f *fakeDev, lo, hi uint32) {
	if q.w32 != nil || q.size == 0 {
		return
	}
	mem, ok := f.space.Translate(uint64(hi)<<32|uint64(lo), int(q.size)*regs.DescSize)
	if !ok {
		panic("fakeDev: ring not mapped")
	}
	q.w32 = unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(mem))), q.size*4)
}

// deliver writes up to max frames (all it can when max < 0) into RX queue
// q's free descriptors and returns how many.
func (f *fakeDev) deliver(qi int, max int) int { return f.deliverRing(&f.rx[qi], max) }

func (f *fakeDev) deliverRing(q *fakeRing, max int) int {
	if q.w32 == nil || q.tail >= q.size {
		return 0
	}
	// Ring state in locals and the wrap as a compare: see Write32.
	w, h, t, size, length := q.w32, q.head, q.tail, q.size, f.rxLen
	n := 0
	for h != t && (max < 0 || n < max) {
		w[4*h+3] = length // plain stores: see Write32
		w[4*h+2] = regs.RXD_STAT_DD | regs.RXD_STAT_EOP
		if h++; h == size {
			h = 0
		}
		n++
	}
	q.head = h
	q.received += uint64(n)
	return n
}

// deliverStatus writes one descriptor with an arbitrary status (for the
// multi-descriptor and error paths).
func (f *fakeDev) deliverStatus(qi int, status, length uint32) bool {
	q := &f.rx[qi]
	if q.head == q.tail || q.w32 == nil {
		return false
	}
	i := q.head
	atomic.StoreUint32(&q.w32[4*i+3], length)
	atomic.StoreUint32(&q.w32[4*i+2], status)
	q.head = (q.head + 1) % q.size
	return true
}

// completeTx completes every TX descriptor up to the tail (after txHold).
func (f *fakeDev) completeTx(qi int) {
	q := &f.tx[qi]
	for q.head != q.tail && q.w32 != nil {
		atomic.StoreUint32(&q.w32[4*q.head+3], regs.TXD_STAT_DD)
		q.head = (q.head + 1) % q.size
		q.sent++
	}
}

// fakeClock is a virtual clock: Sleep advances it at once.
type fakeClock struct {
	mu      sync.Mutex
	elapsed time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Unix(1e9, 0).Add(c.elapsed)
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.elapsed += d
}
