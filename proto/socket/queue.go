package socket

import (
	"net/netip"
	"sync"
)

// Meta describes a queued datagram: its addresses and the IP fields a reader
// may want (TTL for ping, protocol for raw queues).
type Meta struct {
	Remote netip.AddrPort
	Local  netip.AddrPort
	Proto  uint8
	TTL    uint8
	TOS    uint8
	Flags  uint8  // FlagDontFragment
	Seq    uint32 // free for the protocol (e.g. ICMP id/sequence)
}

// FlagDontFragment in Meta.Flags asks for the IP DF bit (RFC 791): the
// datagram must fit the path MTU unfragmented.
const FlagDontFragment = 1 << 0

// DatagramQueue is a bounded FIFO of datagrams in one preallocated byte ring,
// each stored contiguously (a datagram that would wrap starts over at the
// beginning and the skipped tail counts as used until the reader passes it).
// Push and Pop copy and never allocate. Peek/Discard let a single consumer
// read a datagram in place. Safe for concurrent use.
type DatagramQueue struct {
	mu   sync.Mutex
	buf  []byte
	r, w uint64 // read and write positions, modulo len(buf) in buf
	recs []record
	head int // index of the oldest record in recs
	n    int // queued records
}

type record struct {
	start uint64
	n     int
	meta  Meta
}

// NewDatagramQueue returns a queue holding up to bytes of payload and up to
// records datagrams.
func NewDatagramQueue(bytes, records int) *DatagramQueue {
	if records < 1 {
		records = 1
	}
	return &DatagramQueue{buf: make([]byte, bytes), recs: make([]record, records)}
}

// Cap returns the payload capacity in bytes.
func (q *DatagramQueue) Cap() int { return len(q.buf) }

// Len returns the number of queued datagrams.
func (q *DatagramQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Used returns the bytes of the ring in use (payload and skipped tails).
func (q *DatagramQueue) Used() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int(q.w - q.r)
}

// Push appends a datagram made of a followed by b (either may be empty) and
// reports whether it fit. It copies and never allocates.
func (q *DatagramQueue) Push(meta Meta, a, b []byte) bool {
	n := len(a) + len(b)
	q.mu.Lock()
	defer q.mu.Unlock()
	start, ok := q.reserve(n)
	if !ok {
		return false
	}
	if n > 0 {
		off := int(start % uint64(len(q.buf)))
		off += copy(q.buf[off:], a)
		copy(q.buf[off:], b)
	}
	q.commit(start, n, meta)
	return true
}

// reserve finds room for n contiguous bytes; it may skip the ring's tail.
func (q *DatagramQueue) reserve(n int) (uint64, bool) {
	if q.n == len(q.recs) {
		return 0, false
	}
	size := uint64(len(q.buf))
	if n == 0 {
		return q.w, true
	}
	if uint64(n) > size {
		return 0, false
	}
	free := size - (q.w - q.r)
	w := q.w
	if tail := size - w%size; uint64(n) > tail {
		// Skip the tail: the datagram starts at the ring's beginning.
		if tail+uint64(n) > free {
			return 0, false
		}
		w += tail
	} else if uint64(n) > free {
		return 0, false
	}
	return w, true
}

func (q *DatagramQueue) commit(start uint64, n int, meta Meta) {
	i := (q.head + q.n) % len(q.recs)
	q.recs[i] = record{start: start, n: n, meta: meta}
	q.n++
	q.w = start + uint64(n)
}

// Pop copies the oldest datagram into b (truncating it if b is short, as
// recvfrom does) and removes it. It returns the bytes copied, the
// datagram's full length, its metadata, and false when the queue is empty.
func (q *DatagramQueue) Pop(b []byte) (n, full int, meta Meta, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, 0, Meta{}, false
	}
	rec := &q.recs[q.head]
	if rec.n > 0 {
		off := int(rec.start % uint64(len(q.buf)))
		n = copy(b, q.buf[off:off+rec.n])
	}
	full, meta = rec.n, rec.meta
	q.discardLocked()
	return n, full, meta, true
}

// Peek returns the oldest datagram in place, without removing it. The slice
// stays valid until Discard; only one goroutine may consume the queue with
// Peek/Discard.
func (q *DatagramQueue) Peek() ([]byte, Meta, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil, Meta{}, false
	}
	rec := &q.recs[q.head]
	if rec.n == 0 {
		return q.buf[:0], rec.meta, true
	}
	off := int(rec.start % uint64(len(q.buf)))
	return q.buf[off : off+rec.n : off+rec.n], rec.meta, true
}

// Discard removes the oldest datagram.
func (q *DatagramQueue) Discard() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n > 0 {
		q.discardLocked()
	}
}

func (q *DatagramQueue) discardLocked() {
	q.recs[q.head] = record{}
	q.head = (q.head + 1) % len(q.recs)
	q.n--
	if q.n == 0 {
		// Empty: start over at the ring's beginning, so that a datagram
		// as large as the whole ring fits again.
		q.r, q.w = 0, 0
	} else {
		q.r = q.recs[q.head].start
	}
}

// Reset drops every queued datagram.
func (q *DatagramQueue) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		q.discardLocked()
	}
}
