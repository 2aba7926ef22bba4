// Package reassembly puts fragmented IPv4 datagrams back together (RFC 791
// section 3.2, "reassembly"; RFC 815's hole bookkeeping), within hard limits
// on memory, on fragments per datagram, on datagrams in progress and on
// time, so that hostile fragment streams cannot exhaust the host:
//
//   - memory: fragment payloads are copied into a fixed arena of blocks
//     allocated once; when it is full the oldest datagram is evicted;
//   - fragments per datagram: a datagram exceeding the limit is dropped;
//   - time: a datagram not complete within Timeout (Linux's ipfrag_time,
//     30 s) is dropped, and its first fragment offered for an ICMP Time
//     Exceeded (RFC 792, code 1);
//   - overlaps: a fragment overlapping another drops the whole datagram, as
//     RFC 5722 requires for IPv6 and Linux does for IPv4 since 2018; an
//     exact duplicate is ignored.
//
// A Reassembler belongs to one poll loop (the 82599's RSS hashes fragments on
// addresses only, so every fragment of a datagram reaches the same queue).
// It is not safe for concurrent use, except Counters and MemoryInUse, which
// any goroutine may read. Steady-state operation allocates nothing.
package reassembly

import (
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/proto/timer"
)

// Config sets the limits. Zero fields take the defaults.
type Config struct {
	MaxBytes     int           // arena size (default 4 MiB, Linux's ipfrag_high_thresh)
	BlockSize    int           // largest fragment payload kept (default 2048)
	MaxDatagrams int           // datagrams in progress (default 64)
	MaxFragments int           // fragments per datagram (default 64)
	Timeout      time.Duration // default 30 s
	// TimeExceeded, when set, is called when a datagram whose first
	// fragment arrived times out, with that fragment's IP header as
	// received and as much of its payload as fits in QuoteMax bytes (what
	// an ICMP Time Exceeded quotes: RFC 792 asks for at least 8 payload
	// bytes, RFC 1812 4.3.2.3 for as much as fits in a 576-byte datagram).
	// The slice is valid during the call.
	TimeExceeded func(quote []byte)
}

// Defaults.
const (
	DefaultMaxBytes     = 4 << 20
	DefaultBlockSize    = 2048
	DefaultMaxDatagrams = 64
	DefaultMaxFragments = 64
	DefaultTimeout      = 30 * time.Second
	maxDatagram         = 65535
	maxHeader           = 60
	// QuoteMax is the most TimeExceeded is given: 576 - 20 (IP) - 8 (ICMP).
	QuoteMax = 576 - 20 - 8
)

// Key identifies a datagram being reassembled (RFC 791: source,
// destination, protocol and identification).
type Key struct {
	Src, Dst [4]byte
	ID       uint16
	Proto    uint8
}

// Counters record what happened to fragments. Read them with Load.
type Counters struct {
	Fragments     atomic.Uint64 // fragments offered
	Reassembled   atomic.Uint64 // datagrams completed
	Duplicates    atomic.Uint64 // exact duplicate fragments ignored
	Overlaps      atomic.Uint64 // datagrams dropped for an overlapping fragment
	Malformed     atomic.Uint64 // fragments with bad lengths (not a multiple of 8, past the end, conflicting ends)
	TooBig        atomic.Uint64 // fragments larger than a block, or datagrams past 65535 bytes
	TooManyFrags  atomic.Uint64 // datagrams dropped for exceeding MaxFragments
	Timeouts      atomic.Uint64 // datagrams dropped on timeout
	MemoryEvicted atomic.Uint64 // datagrams evicted to make room (memory or datagram limit)
	NoMemory      atomic.Uint64 // fragments dropped because nothing could be evicted
}

// Outcome says what Add did with a fragment.
type Outcome int

// Outcomes of Add.
const (
	Queued    Outcome = iota // kept; the datagram is incomplete
	Complete                 // the datagram is whole: Add returned it
	Duplicate                // an exact duplicate, ignored
	Dropped                  // the fragment (and maybe its datagram) was dropped; see Counters
)

type frag struct {
	off, end int32 // payload bytes [off, end) of the datagram
	block    int32
}

type datagram struct {
	key      Key
	inUse    bool
	created  uint64 // creation order, for eviction of the oldest
	frags    []frag // sorted by off; capacity MaxFragments
	total    int    // payload length once the last fragment is in; -1 before
	received int    // payload bytes held
	header   [maxHeader]byte
	hlen     int // 0 until the first fragment (offset 0) arrives
	timer    timer.Timer
}

// Reassembler holds datagrams in progress.
type Reassembler struct {
	cfg         Config
	timers      *timer.Queue
	arena       []byte
	free        []int32 // free blocks
	dgrams      []datagram
	index       map[Key]int32
	order       uint64
	out         []byte // the last completed datagram
	quote       [QuoteMax]byte
	counter     Counters
	blocksInUse atomic.Int64
}

// New returns a reassembler whose timeouts run on timers.
func New(cfg Config, timers *timer.Queue) *Reassembler {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.MaxDatagrams <= 0 {
		cfg.MaxDatagrams = DefaultMaxDatagrams
	}
	if cfg.MaxFragments <= 0 {
		cfg.MaxFragments = DefaultMaxFragments
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	blocks := max(cfg.MaxBytes/cfg.BlockSize, 1)
	r := &Reassembler{
		cfg:    cfg,
		timers: timers,
		arena:  make([]byte, blocks*cfg.BlockSize),
		free:   make([]int32, blocks),
		dgrams: make([]datagram, cfg.MaxDatagrams),
		index:  make(map[Key]int32, cfg.MaxDatagrams),
		out:    make([]byte, maxHeader+maxDatagram),
	}
	for i := range r.free {
		r.free[i] = int32(blocks - 1 - i)
	}
	for i := range r.dgrams {
		d := &r.dgrams[i]
		d.frags = make([]frag, 0, cfg.MaxFragments)
		idx := int32(i)
		d.timer.Init(func(time.Time) { r.expire(idx) })
	}
	return r
}

// Counters returns the reassembler's counters.
func (r *Reassembler) Counters() *Counters { return &r.counter }

// MemoryInUse returns the arena bytes holding fragments.
func (r *Reassembler) MemoryInUse() int { return int(r.blocksInUse.Load()) * r.cfg.BlockSize }

// MemoryLimit returns the arena size.
func (r *Reassembler) MemoryLimit() int { return len(r.arena) }

// InProgress returns the number of datagrams being reassembled.
func (r *Reassembler) InProgress() int { return len(r.index) }

// Add offers one fragment: header is its IP header (options included),
// payload its data at byte offset off of the datagram, more its MF flag.
// When the fragment completes the datagram, Add returns Complete and the
// whole datagram: the first fragment's header with the total length set and
// the fragment fields cleared (checksum recomputed by fix), followed by the
// payload. The slice is valid until the next call.
func (r *Reassembler) Add(k Key, header []byte, off int, more bool, payload []byte, now time.Time, fix func(ip []byte)) (Outcome, []byte) {
	r.counter.Fragments.Add(1)
	n := len(payload)
	end := off + n
	switch {
	case n > r.cfg.BlockSize || end > maxDatagram-len(header):
		r.counter.TooBig.Add(1)
		r.dropKey(k)
		return Dropped, nil
	case more && (n == 0 || n%8 != 0), off%8 != 0, len(header) > maxHeader:
		r.counter.Malformed.Add(1)
		return Dropped, nil
	}
	i, ok := r.index[k]
	if !ok {
		i, ok = r.newDatagram(k, now)
		if !ok {
			r.counter.NoMemory.Add(1)
			return Dropped, nil
		}
	}
	d := &r.dgrams[i]

	// The end of the datagram: fixed by the last fragment, never exceeded.
	if !more {
		if (d.total >= 0 && d.total != end) || (len(d.frags) > 0 && int(d.frags[len(d.frags)-1].end) > end) {
			r.counter.Malformed.Add(1)
			r.release(i)
			return Dropped, nil
		}
		d.total = end
	} else if d.total >= 0 && end > d.total {
		r.counter.Malformed.Add(1)
		r.release(i)
		return Dropped, nil
	}

	// Position among the fragments, and overlap with the neighbours.
	pos := len(d.frags)
	for j := range d.frags {
		if int(d.frags[j].off) >= off {
			pos = j
			break
		}
	}
	if pos < len(d.frags) && int(d.frags[pos].off) == off && int(d.frags[pos].end) == end {
		r.counter.Duplicates.Add(1)
		return Duplicate, nil
	}
	if (pos > 0 && int(d.frags[pos-1].end) > off) || (pos < len(d.frags) && int(d.frags[pos].off) < end) {
		r.counter.Overlaps.Add(1)
		r.release(i)
		return Dropped, nil
	}
	if len(d.frags) == r.cfg.MaxFragments {
		r.counter.TooManyFrags.Add(1)
		r.release(i)
		return Dropped, nil
	}
	block, ok := r.allocBlock(i)
	if !ok {
		r.counter.NoMemory.Add(1)
		r.release(i)
		return Dropped, nil
	}
	copy(r.arena[int(block)*r.cfg.BlockSize:], payload)
	d.frags = append(d.frags, frag{})
	copy(d.frags[pos+1:], d.frags[pos:])
	d.frags[pos] = frag{off: int32(off), end: int32(end), block: block}
	d.received += n
	if off == 0 {
		d.hlen = copy(d.header[:], header)
	}
	if d.total < 0 || d.received != d.total || d.hlen == 0 {
		return Queued, nil
	}

	// Complete: no overlaps and as many bytes as the total, so no holes.
	hl := d.hlen
	copy(r.out, d.header[:hl])
	for _, f := range d.frags {
		copy(r.out[hl+int(f.off):], r.arena[int(f.block)*r.cfg.BlockSize:int(f.block)*r.cfg.BlockSize+int(f.end-f.off)])
	}
	ip := r.out[:hl+d.total]
	ip[2], ip[3] = byte((hl+d.total)>>8), byte(hl+d.total)
	ip[6], ip[7] = 0, 0
	if fix != nil {
		fix(ip)
	}
	r.counter.Reassembled.Add(1)
	r.release(i)
	return Complete, ip
}

func (r *Reassembler) dropKey(k Key) {
	if i, ok := r.index[k]; ok {
		r.release(i)
	}
}

// newDatagram takes a free datagram slot, evicting the oldest if none is.
func (r *Reassembler) newDatagram(k Key, now time.Time) (int32, bool) {
	slot := int32(-1)
	for i := range r.dgrams {
		if !r.dgrams[i].inUse {
			slot = int32(i)
			break
		}
	}
	if slot < 0 {
		slot = r.oldest(-1)
		if slot < 0 {
			return 0, false
		}
		r.counter.MemoryEvicted.Add(1)
		r.release(slot)
	}
	d := &r.dgrams[slot]
	r.order++
	d.key, d.inUse, d.created = k, true, r.order
	d.frags = d.frags[:0]
	d.total, d.received, d.hlen = -1, 0, 0
	r.index[k] = slot
	r.timers.Schedule(&d.timer, now.Add(r.cfg.Timeout))
	return slot, true
}

// allocBlock takes an arena block, evicting the oldest other datagrams
// while none is free.
func (r *Reassembler) allocBlock(owner int32) (int32, bool) {
	for len(r.free) == 0 {
		victim := r.oldest(owner)
		if victim < 0 {
			return 0, false
		}
		r.counter.MemoryEvicted.Add(1)
		r.release(victim)
	}
	b := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.blocksInUse.Add(1)
	return b, true
}

func (r *Reassembler) oldest(except int32) int32 {
	best := int32(-1)
	for i := range r.dgrams {
		d := &r.dgrams[i]
		if d.inUse && int32(i) != except && (best < 0 || d.created < r.dgrams[best].created) {
			best = int32(i)
		}
	}
	return best
}

func (r *Reassembler) release(i int32) {
	d := &r.dgrams[i]
	if !d.inUse {
		return
	}
	for _, f := range d.frags {
		r.free = append(r.free, f.block)
	}
	r.blocksInUse.Add(-int64(len(d.frags)))
	d.frags = d.frags[:0]
	r.timers.Stop(&d.timer)
	delete(r.index, d.key)
	d.inUse = false
}

func (r *Reassembler) expire(i int32) {
	d := &r.dgrams[i]
	if !d.inUse {
		return
	}
	r.counter.Timeouts.Add(1)
	if r.cfg.TimeExceeded != nil && d.hlen > 0 && len(d.frags) > 0 && d.frags[0].off == 0 {
		n := copy(r.quote[:], d.header[:d.hlen])
		f := d.frags[0]
		n += copy(r.quote[n:], r.arena[int(f.block)*r.cfg.BlockSize:int(f.block)*r.cfg.BlockSize+int(f.end-f.off)])
		r.release(i)
		r.cfg.TimeExceeded(r.quote[:n])
		return
	}
	r.release(i)
}
