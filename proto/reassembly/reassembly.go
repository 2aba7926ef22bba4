// Package reassembly puts fragmented IPv4 datagrams back together (RFC 791
// section 3.2, "reassembly"; RFC 815's hole bookkeeping), within hard limits
// on memory, on fragments per datagram, on datagrams in progress and on
// time, so that hostile fragment streams cannot exhaust the host:
//
//   - memory: fragment payloads are copied into a fixed arena of blocks
//     (BlockSize, 2 KiB) allocated once. A fragment that continues the one
//     before it shares that fragment's block while the block has room, as
//     Linux chains in-order fragments into runs, so tiny in-order fragments
//     do not pin a block each; out of order, each takes a block, so a
//     datagram holds at most MaxFragments blocks (64 x 2 KiB = 128 KiB)
//     and a reassembler at most MaxBytes (4 MiB);
//   - per source: one source address holds at most MaxDatagramsPerSource
//     datagrams and MaxBytesPerSource bytes (a quarter of each by
//     default); past its share its own oldest datagram is evicted, and
//     when the arena or the slots are full the victim is the oldest
//     datagram of the source holding the most memory, so a flood from one
//     source does not push out another source's datagrams;
//   - fragments per datagram: a datagram exceeding the limit is dropped;
//   - a dropped datagram (too many fragments, overlap, bad lengths, no
//     memory) leaves a tombstone that holds no memory until its timeout:
//     its later fragments are discarded on arrival (AfterDrop) instead of
//     starting a new datagram that would hold memory for the timeout;
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
	// Per source address: datagrams in progress (default MaxDatagrams/4)
	// and arena bytes (default MaxBytes/4).
	MaxDatagramsPerSource int
	MaxBytesPerSource     int
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
	AfterDrop     atomic.Uint64 // fragments of a datagram already dropped, discarded on arrival
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
	dead     bool   // dropped: a tombstone holding no fragments until its timeout
	nfrags   int    // fragments accepted (several may share a run, one block)
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
	maxSrcBlks  int // MaxBytesPerSource in blocks
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
	if cfg.MaxDatagramsPerSource <= 0 {
		cfg.MaxDatagramsPerSource = max(cfg.MaxDatagrams/4, 1)
	}
	if cfg.MaxBytesPerSource <= 0 {
		cfg.MaxBytesPerSource = cfg.MaxBytes / 4
	}
	blocks := max(cfg.MaxBytes/cfg.BlockSize, 1)
	r := &Reassembler{
		cfg:        cfg,
		maxSrcBlks: max(cfg.MaxBytesPerSource/cfg.BlockSize, 1),
		timers:     timers,
		arena:      make([]byte, blocks*cfg.BlockSize),
		free:       make([]int32, blocks),
		dgrams:     make([]datagram, cfg.MaxDatagrams),
		index:      make(map[Key]int32, cfg.MaxDatagrams),
		out:        make([]byte, maxHeader+maxDatagram),
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

// InProgress returns the number of datagrams being reassembled (not
// counting the tombstones of dropped ones).
func (r *Reassembler) InProgress() int {
	n := 0
	for i := range r.dgrams {
		if r.dgrams[i].inUse && !r.dgrams[i].dead {
			n++
		}
	}
	return n
}

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
	i, ok := r.index[k]
	if ok && r.dgrams[i].dead {
		r.counter.AfterDrop.Add(1)
		return Dropped, nil
	}
	switch {
	case n > r.cfg.BlockSize || end > maxDatagram-len(header):
		r.counter.TooBig.Add(1)
		if ok {
			r.kill(i)
		}
		return Dropped, nil
	case more && (n == 0 || n%8 != 0), off%8 != 0, len(header) > maxHeader:
		r.counter.Malformed.Add(1)
		return Dropped, nil
	}
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
			r.kill(i)
			return Dropped, nil
		}
		d.total = end
	} else if d.total >= 0 && end > d.total {
		r.counter.Malformed.Add(1)
		r.kill(i)
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
	// A fragment inside one already held (a run of merged fragments
	// included) is a duplicate, as in Linux's inet_frag_queue_insert
	// (IPFRAG_DUP); any other overlap drops the datagram.
	if (pos < len(d.frags) && int(d.frags[pos].off) == off && int(d.frags[pos].end) >= end) ||
		(pos > 0 && int(d.frags[pos-1].end) >= end) {
		r.counter.Duplicates.Add(1)
		return Duplicate, nil
	}
	if (pos > 0 && int(d.frags[pos-1].end) > off) || (pos < len(d.frags) && int(d.frags[pos].off) < end) {
		r.counter.Overlaps.Add(1)
		r.kill(i)
		return Dropped, nil
	}
	if d.nfrags == r.cfg.MaxFragments {
		r.counter.TooManyFrags.Add(1)
		r.kill(i)
		return Dropped, nil
	}
	if prev := pos - 1; prev >= 0 && int(d.frags[prev].end) == off && end-int(d.frags[prev].off) <= r.cfg.BlockSize {
		// Continues the run before it, in that run's block.
		f := &d.frags[prev]
		copy(r.arena[int(f.block)*r.cfg.BlockSize+off-int(f.off):], payload)
		f.end = int32(end)
	} else {
		block, ok := r.allocBlock(i)
		if !ok {
			r.counter.NoMemory.Add(1)
			r.kill(i)
			return Dropped, nil
		}
		copy(r.arena[int(block)*r.cfg.BlockSize:], payload)
		d.frags = append(d.frags, frag{})
		copy(d.frags[pos+1:], d.frags[pos:])
		d.frags[pos] = frag{off: int32(off), end: int32(end), block: block}
	}
	d.nfrags++
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

// newDatagram takes a free datagram slot. A source at its share of
// datagrams gives up its own oldest; when no slot is free the victim is a
// tombstone, else the oldest datagram of the source holding most memory.
func (r *Reassembler) newDatagram(k Key, now time.Time) (int32, bool) {
	if dgrams, _ := r.usage(k.Src); dgrams >= r.cfg.MaxDatagramsPerSource {
		r.evict(r.victim(-1, &k.Src))
	}
	slot := int32(-1)
	for i := range r.dgrams {
		if !r.dgrams[i].inUse {
			slot = int32(i)
			break
		}
	}
	if slot < 0 {
		slot = r.victim(-1, nil)
		if slot < 0 {
			return 0, false
		}
		r.evict(slot)
	}
	d := &r.dgrams[slot]
	r.order++
	d.key, d.inUse, d.dead, d.created = k, true, false, r.order
	d.frags = d.frags[:0]
	d.nfrags, d.total, d.received, d.hlen = 0, -1, 0, 0
	r.index[k] = slot
	r.timers.Schedule(&d.timer, now.Add(r.cfg.Timeout))
	return slot, true
}

// allocBlock takes an arena block for datagram owner. While owner's
// source is at its share of memory, its other datagrams are evicted, oldest
// first (none left: no block); while the arena is full, the oldest
// datagrams of the source holding most memory are.
func (r *Reassembler) allocBlock(owner int32) (int32, bool) {
	src := r.dgrams[owner].key.Src
	for {
		_, blocks := r.usage(src)
		if blocks < r.maxSrcBlks {
			break
		}
		v := r.victim(owner, &src)
		if v < 0 {
			return 0, false
		}
		r.evict(v)
	}
	for len(r.free) == 0 {
		v := r.victim(owner, nil)
		if v < 0 {
			return 0, false
		}
		r.evict(v)
	}
	b := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.blocksInUse.Add(1)
	return b, true
}

// usage returns the datagrams (tombstones included) and blocks that
// source src holds.
func (r *Reassembler) usage(src [4]byte) (dgrams, blocks int) {
	for i := range r.dgrams {
		d := &r.dgrams[i]
		if d.inUse && d.key.Src == src {
			dgrams++
			blocks += len(d.frags)
		}
	}
	return dgrams, blocks
}

// victim picks the datagram to evict, never except: with src, src's oldest
// (its tombstones first); without, the oldest tombstone, else the oldest
// datagram of the source holding the most blocks. -1 when there is none.
func (r *Reassembler) victim(except int32, src *[4]byte) int32 {
	best, bestBlocks := int32(-1), -1
	for i := range r.dgrams {
		d := &r.dgrams[i]
		if !d.inUse || int32(i) == except || (src != nil && d.key.Src != *src) {
			continue
		}
		blocks := 0
		switch {
		case d.dead:
			blocks = 1 << 30 // tombstones go first
		case src == nil:
			_, blocks = r.usage(d.key.Src)
		}
		if best < 0 || blocks > bestBlocks || (blocks == bestBlocks && d.created < r.dgrams[best].created) {
			best, bestBlocks = int32(i), blocks
		}
	}
	return best
}

// evict frees datagram i to make room (counted unless a tombstone).
func (r *Reassembler) evict(i int32) {
	if i < 0 {
		return
	}
	if !r.dgrams[i].dead {
		r.counter.MemoryEvicted.Add(1)
	}
	r.release(i)
}

// kill drops datagram i's fragments and leaves a tombstone under its key
// until its timer fires, so that its later fragments are discarded.
func (r *Reassembler) kill(i int32) {
	d := &r.dgrams[i]
	for _, f := range d.frags {
		r.free = append(r.free, f.block)
	}
	r.blocksInUse.Add(-int64(len(d.frags)))
	d.frags = d.frags[:0]
	d.dead = true
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
	if d.dead {
		r.release(i) // a tombstone ends quietly
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
