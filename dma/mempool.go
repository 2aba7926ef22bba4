package dma

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Default mempool geometry.
const (
	// DefaultBufSize is the data room of a packet buffer: what the NIC may
	// write into it. 2048 matches SRRCTL.BSIZEPACKET's reset value of 2 KB
	// (datasheet 8.2.3.8.7), so a received frame never overruns its buffer.
	DefaultBufSize = 2048
	// DefaultHeadroom is the space before the data room, where a protocol
	// stack prepends headers without copying the payload.
	DefaultHeadroom = 128
	// DefaultBuffers is the default number of buffers in a pool.
	DefaultBuffers = 4096
)

// Errors returned by mempool operations. They are sentinels so that the
// per-packet path can return them without allocating.
var (
	ErrPoolExhausted = errors.New("dma: mempool exhausted: every buffer is in use (enlarge the pool or free buffers sooner)")
	ErrDoubleFree    = errors.New("dma: buffer freed twice")
	ErrForeignBuffer = errors.New("dma: buffer does not belong to this mempool")
	// ErrPoolReleased: the pool's memory was released (Release); it
	// refuses every call from then on.
	ErrPoolReleased = errors.New("dma: mempool released: its memory is gone")
)

// MempoolConfig describes a pool. Zero fields take the defaults.
type MempoolConfig struct {
	Name     string // for traces and error messages
	Buffers  int    // number of buffers
	BufSize  int    // data room per buffer, bytes
	Headroom int    // bytes reserved before the data room
}

// Mempool is a pool of fixed-size packet buffers in DMA memory, identified by
// index. A buffer's host slice and IOVA are derived from its index (the
// IOVAs once, into a table the pool keeps: a load per TX post); a Packet
// stores neither. Buffers never straddle a page of the backing memory (a
// 2 MiB hugepage is physically contiguous, two of them need not be). Freed buffers
// are reused last-in first-out, which keeps the working set in cache.
//
// A Mempool is not safe for concurrent use: like a DPDK per-core cache it
// belongs to the goroutine that polls the queues using it.
//
// After Release the pool is unusable and says so: Alloc and the Free
// methods return ErrPoolReleased, AllocBatch takes nothing, Buffer returns
// nil and BufferIOVA 0, Available and InUse report 0; a Packet of the pool
// has no Data. None of them touches the released memory or panics.
type Mempool struct {
	name     string
	region   *Region
	mem      []byte
	iova     uint64
	bufSize  int
	headroom int
	stride   int
	perPage  int    // buffers per backing page
	perPageM uint64 // ceil(2^64 / perPage), for offset
	page     int    // backing page size
	n        int

	free  []uint32 // LIFO stack of free buffer indexes
	inUse []bool   // ownership: true while the buffer is out of the pool
	// bufIOVA[i] is buffer i's IOVA (iova + offset(i)), computed once:
	// every TX post and RX refill needs one, and a load is cheaper than
	// offset's multiplications. nil once released.
	bufIOVA []uint64
}

// NewMempool allocates a pool's memory from alloc and returns it full.
func NewMempool(alloc *Allocator, cfg MempoolConfig) (*Mempool, error) {
	if cfg.Buffers == 0 {
		cfg.Buffers = DefaultBuffers
	}
	if cfg.BufSize == 0 {
		cfg.BufSize = DefaultBufSize
	}
	if cfg.Headroom == 0 {
		cfg.Headroom = DefaultHeadroom
	}
	if cfg.Name == "" {
		cfg.Name = "mempool"
	}
	// Strides are multiples of 128 so that every data room starts 128-byte
	// aligned (the 82599 ignores the low bit of a receive buffer address,
	// datasheet 7.1.6.1; cache-line alignment is what matters for speed).
	stride := roundUp(cfg.Headroom+cfg.BufSize, 128)
	if cfg.Buffers < 0 || cfg.BufSize < 0 || cfg.Headroom < 0 || stride > math.MaxUint16 || cfg.Buffers > math.MaxUint32/2 {
		return nil, fmt.Errorf("dma: mempool %q: bad geometry (%d buffers of %d+%d bytes)", cfg.Name, cfg.Buffers, cfg.Headroom, cfg.BufSize)
	}
	if stride > HugepageSize {
		return nil, fmt.Errorf("dma: mempool %q: a %d-byte buffer cannot fit in a hugepage", cfg.Name, stride)
	}
	// Buffers are packed per 2 MiB whatever backs the region: with hugepages
	// that keeps each buffer physically contiguous; with small pages the
	// device reaches memory through an IOMMU (VFIO or the simulator's model),
	// where only IOVA contiguity matters.
	perPage := HugepageSize / stride
	pages := (cfg.Buffers + perPage - 1) / perPage
	region, err := alloc.Alloc(pages*HugepageSize, SmallPageSize)
	if err != nil {
		return nil, fmt.Errorf("dma: mempool %q: %w", cfg.Name, err)
	}
	page := HugepageSize
	p := &Mempool{
		name:     cfg.Name,
		region:   region,
		mem:      region.Bytes(),
		iova:     region.IOVA(),
		bufSize:  cfg.BufSize,
		headroom: cfg.Headroom,
		stride:   stride,
		perPage:  perPage,
		perPageM: ^uint64(0)/uint64(perPage) + 1,
		page:     page,
		n:        cfg.Buffers,
		free:     make([]uint32, cfg.Buffers),
		inUse:    make([]bool, cfg.Buffers),
	}
	if p.offset(uint32(cfg.Buffers-1))+stride > len(p.mem) {
		region.Free()
		return nil, fmt.Errorf("dma: mempool %q: internal error: region of %d bytes too small", cfg.Name, len(p.mem))
	}
	// Stack order: index 0 is handed out first.
	for i := range p.free {
		p.free[i] = uint32(cfg.Buffers - 1 - i)
	}
	p.bufIOVA = make([]uint64, cfg.Buffers)
	for i := range p.bufIOVA {
		p.bufIOVA[i] = p.iova + uint64(p.offset(uint32(i)))
	}
	return p, nil
}

// Layout returns the pool's buffer grid: buffer i starts at IOVA
// base + i/perPage*page + i%perPage*stride (what trace headers record for
// the checkers, trace.PoolInfo).
func (p *Mempool) Layout() (base uint64, stride, perPage, page int) {
	return p.iova, p.stride, p.perPage, p.page
}

// offset of buffer i from the start of the pool's memory. The division by
// perPage is a multiplication by its precomputed reciprocal (perPageM;
// Lemire, Kaser, Kurz, "Faster remainder by direct computation", 2019:
// exact for every 32-bit i), not a DIV of 25 or more cycles: TxBatch
// derived every buffer's IOVA through it before bufIOVA cached them.
func (p *Mempool) offset(i uint32) int {
	if p.perPage == 1 {
		return int(i) * p.page // perPageM would overflow
	}
	q, _ := bits.Mul64(p.perPageM, uint64(i))
	return int(q)*p.page + (int(i)-int(q)*p.perPage)*p.stride
}

// Name returns the pool's name.
func (p *Mempool) Name() string { return p.name }

// Size returns the number of buffers in the pool.
func (p *Mempool) Size() int { return p.n }

// Available returns the number of free buffers.
func (p *Mempool) Available() int { return len(p.free) }

// InUse returns the number of buffers out of the pool.
func (p *Mempool) InUse() int {
	if p.Released() {
		return 0
	}
	return p.n - len(p.free)
}

// Owned reports whether buffer i is currently out of the pool.
func (p *Mempool) Owned(i uint32) bool { return int(i) < len(p.inUse) && p.inUse[i] }

// Released reports whether Release was called.
func (p *Mempool) Released() bool { return p.mem == nil }

// BufSize returns the data room of each buffer.
func (p *Mempool) BufSize() int { return p.bufSize }

// Headroom returns the bytes before each buffer's data room.
func (p *Mempool) Headroom() int { return p.headroom }

// Buffer returns buffer i's whole memory: headroom followed by data room
// (nil for an index out of range or a released pool).
func (p *Mempool) Buffer(i uint32) []byte {
	if int(i) >= p.n || p.mem == nil {
		return nil
	}
	off := p.offset(i)
	return p.mem[off : off+p.headroom+p.bufSize : off+p.headroom+p.bufSize]
}

// BufferIOVA returns the device address of the first byte of buffer i
// (the start of its headroom), or 0 for a released pool or an index out
// of range.
func (p *Mempool) BufferIOVA(i uint32) uint64 {
	if int(i) < len(p.bufIOVA) {
		return p.bufIOVA[i]
	}
	return 0
}

// Alloc takes one buffer out of the pool. The packet's data starts after the
// headroom and is empty.
func (p *Mempool) Alloc() (Packet, error) {
	if p.mem == nil {
		return Packet{}, ErrPoolReleased
	}
	n := len(p.free)
	if n == 0 {
		return Packet{}, ErrPoolExhausted
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	p.inUse[i] = true
	return Packet{Pool: p, Index: i, Off: uint16(p.headroom)}, nil
}

// AllocIndex is Alloc returning the buffer's index only (its packet would
// have Off Headroom and Len 0), and false when the pool is exhausted or
// released: a receive path that refills a ring needs no Packet, and
// returning one costs a copy through memory per buffer.
func (p *Mempool) AllocIndex() (uint32, bool) {
	n := len(p.free)
	if n == 0 { // exhausted, or released (Release empties free)
		return 0, false
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	p.inUse[i] = true
	return i, true
}

// AllocBatch fills dst with buffers and returns how many it took: fewer than
// len(dst) only when the pool runs out.
func (p *Mempool) AllocBatch(dst []Packet) int {
	if p.mem == nil {
		return 0
	}
	n := min(len(dst), len(p.free))
	top := len(p.free)
	for k := 0; k < n; k++ {
		i := p.free[top-1-k]
		p.inUse[i] = true
		dst[k] = Packet{Pool: p, Index: i, Off: uint16(p.headroom)}
	}
	p.free = p.free[:top-n]
	return n
}

// FreeIndex returns buffer i to the pool. One test admits the common case
// (inUse is nil once released, so a released pool, a foreign index and a
// double free all fail it); freeError says which it was.
func (p *Mempool) FreeIndex(i uint32) error {
	if int(i) >= len(p.inUse) || !p.inUse[i] {
		return p.freeError(i)
	}
	p.inUse[i] = false
	p.free = append(p.free, i)
	return nil
}

// freeError is the error of a FreeIndex(i) that was refused.
func (p *Mempool) freeError(i uint32) error {
	switch {
	case p.mem == nil:
		return ErrPoolReleased
	case int(i) >= p.n:
		return ErrForeignBuffer
	default:
		return ErrDoubleFree
	}
}

// FreeBatch returns the packets' buffers to the pool. It returns the first
// error met (a foreign buffer or a double free) and skips that packet.
func (p *Mempool) FreeBatch(pkts []Packet) error {
	if p.mem == nil {
		return ErrPoolReleased
	}
	var first error
	for k := range pkts {
		var err error
		if pkts[k].Pool != p {
			err = ErrForeignBuffer
		} else {
			err = p.FreeIndex(pkts[k].Index)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Release frees the pool's memory. Buffers still out become invalid, and
// the pool refuses every later call (ErrPoolReleased). Calling it again
// does nothing.
func (p *Mempool) Release() error {
	if p.region == nil {
		return nil
	}
	err := p.region.Free()
	p.region, p.mem, p.free, p.inUse, p.bufIOVA = nil, nil, nil, nil, nil
	return err
}

// Packet is a handle to a packet buffer: which pool, which buffer, and where
// the frame lies in it. It is a small value, passed in caller-owned slices so
// that the data path allocates nothing.
type Packet struct {
	Pool  *Mempool
	Index uint32
	Off   uint16 // start of the frame, from the start of the buffer's headroom
	Len   uint16 // length of the frame
	// Meta is the packet's offload metadata: what the device found on
	// receive (checksums, VLAN tag, RSS hash) or what the sender asks of it
	// on transmit (checksum insertion, VLAN insertion, TSO). Zero: nothing.
	Meta Meta
}

// Data returns the frame bytes (nil when the packet has no pool, its pool
// was released, or the frame does not lie within its buffer).
func (p Packet) Data() []byte {
	if p.Pool == nil {
		return nil
	}
	b := p.Pool.Buffer(p.Index)
	if int(p.Off)+int(p.Len) > len(b) {
		return nil
	}
	return b[p.Off : int(p.Off)+int(p.Len)]
}

// Room returns the buffer from the frame's start to the end of the data room:
// where a frame being built may grow (nil as for Data).
func (p Packet) Room() []byte {
	if p.Pool == nil {
		return nil
	}
	b := p.Pool.Buffer(p.Index)
	if int(p.Off) > len(b) {
		return nil
	}
	return b[p.Off:]
}

// IOVA returns the device address of the frame's first byte.
func (p Packet) IOVA() uint64 { return p.Pool.BufferIOVA(p.Index) + uint64(p.Off) }

// Free returns the buffer to its pool.
func (p Packet) Free() error {
	if p.Pool == nil {
		return ErrForeignBuffer
	}
	return p.Pool.FreeIndex(p.Index)
}

// Prepend moves the frame start back by n bytes into the headroom and
// returns the new first n bytes, or false when the headroom is too small.
func (p *Packet) Prepend(n int) ([]byte, bool) {
	if n > int(p.Off) || p.Pool == nil || p.Pool.Released() {
		return nil, false
	}
	p.Off -= uint16(n)
	p.Len += uint16(n)
	return p.Pool.Buffer(p.Index)[p.Off : int(p.Off)+n], true
}
