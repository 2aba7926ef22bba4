// Package buffer holds the byte ring TCP uses for its send and receive
// buffers (RFC 9293 section 3.3.1: the send buffer keeps data from SND.UNA
// until it is acknowledged; the receive buffer keeps data from RCV.NXT's
// reader position, with out-of-order data parked at its place in the window).
//
// Layout. A Ring has a fixed capacity Cap. Offsets are counted from the head
// (the oldest byte). The readable data is [0, Len); the free space is
// [Len, Cap). Out-of-order bytes may be stored in the free space with WriteAt
// at the offset they will have once the gap before them is filled, then made
// readable with Extend. Bytes in the free space are not part of Len until
// Extend, and a Write (which appends at Len) overwrites them.
//
// For a send buffer: Write appends application data, Peek or Slices read
// bytes at offset seq-SND.UNA to (re)transmit, Discard(n) drops n bytes when
// an ACK advances SND.UNA by n. For a receive buffer: a segment starting at
// sequence number seq is placed with WriteAt(Len()+int(seq-RCV.NXT), data)
// whether it is in order or not, and Extend(n) publishes the n bytes by
// which RCV.NXT advanced; the application consumes with Read.
//
// Write, Read, Peek, Discard, WriteAt, Extend and Slices never allocate; only
// NewRing and Grow do. A Ring is not safe for concurrent use.
package buffer

import "fmt"

// Ring is a fixed-capacity byte ring. The zero value has capacity 0; use
// NewRing.
type Ring struct {
	buf  []byte
	head int // index in buf of offset 0
	n    int // readable bytes
}

// NewRing returns an empty ring of the given capacity (>= 0).
func NewRing(capacity int) *Ring {
	if capacity < 0 {
		panic(fmt.Sprintf("buffer: negative capacity %d", capacity))
	}
	return &Ring{buf: make([]byte, capacity)}
}

// Len returns how many bytes are readable.
func (r *Ring) Len() int { return r.n }

// Cap returns the capacity.
func (r *Ring) Cap() int { return len(r.buf) }

// Free returns Cap() - Len(): how many bytes Write can still append.
func (r *Ring) Free() int { return len(r.buf) - r.n }

// Reset empties the ring (Len becomes 0). The storage is kept; its contents,
// including any WriteAt data, are no longer meaningful.
func (r *Ring) Reset() { r.head, r.n = 0, 0 }

// index returns the buf index of offset off, 0 <= off <= Cap.
func (r *Ring) index(off int) int {
	i := r.head + off
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	return i
}

// span returns the at most two slices of buf covering offsets [off, off+n),
// 0 <= off, n and off+n <= Cap.
func (r *Ring) span(off, n int) (a, b []byte) {
	if n == 0 {
		return nil, nil
	}
	i := r.index(off)
	if i+n <= len(r.buf) {
		return r.buf[i : i+n : i+n], nil
	}
	return r.buf[i:len(r.buf):len(r.buf)], r.buf[: n-(len(r.buf)-i) : n-(len(r.buf)-i)]
}

// Write appends as much of p as fits in the free space and returns how many
// bytes it appended (min(len(p), Free())). It overwrites any WriteAt data at
// offsets [Len, Len+n).
func (r *Ring) Write(p []byte) int {
	n := min(len(p), r.Free())
	a, b := r.span(r.n, n)
	copy(b, p[copy(a, p[:n]):n])
	r.n += n
	return n
}

// Read consumes up to len(p) bytes from the head into p and returns how many
// (min(len(p), Len())).
func (r *Ring) Read(p []byte) int {
	n := r.Peek(0, p)
	r.Discard(n)
	return n
}

// Peek copies readable bytes starting at offset off from the head into p
// without consuming them and returns how many it copied:
// min(len(p), Len()-off), or 0 when off >= Len(). It panics if off < 0.
func (r *Ring) Peek(off int, p []byte) int {
	if off < 0 {
		panic(fmt.Sprintf("buffer: Peek at negative offset %d", off))
	}
	if off >= r.n {
		return 0
	}
	n := min(len(p), r.n-off)
	a, b := r.span(off, n)
	copy(p[copy(p, a):n], b)
	return n
}

// Discard drops the first n bytes (an ACK advancing SND.UNA by n). It panics
// unless 0 <= n <= Len(): acknowledging unsent data is the caller's bug.
// Data parked beyond Len with WriteAt stays in place (its offsets shift
// down by n).
func (r *Ring) Discard(n int) {
	if n < 0 || n > r.n {
		panic(fmt.Sprintf("buffer: Discard(%d) with Len %d", n, r.n))
	}
	r.head = r.index(n)
	r.n -= n
}

// WriteAt stores p at offsets [off, off+len(p)) from the head without
// changing Len, for out-of-order data parked in the free space. Precisely:
// bytes that would land at offsets >= Cap() are dropped, bytes that would
// land at offsets < Len() (already readable data, such as the overlapping
// part of a retransmission) are left unchanged (first copy wins), and the
// rest are written. It returns min(len(p), Cap()-off), or 0 when off >=
// Cap(): the length of the prefix of p that is accounted for (written or
// already present). It panics if off < 0.
//
// Note that Discard and Read move the head, so offsets of parked data shift
// down by the number of bytes consumed; Write overwrites parked data at
// [Len, Len+n) (use WriteAt(Len(), p) and Extend instead when the receive
// side has parked data).
func (r *Ring) WriteAt(off int, p []byte) int {
	if off < 0 {
		panic(fmt.Sprintf("buffer: WriteAt negative offset %d", off))
	}
	if off >= len(r.buf) {
		return 0
	}
	n := min(len(p), len(r.buf)-off)
	skip := 0
	if off < r.n {
		skip = min(r.n-off, n)
	}
	a, b := r.span(off+skip, n-skip)
	q := p[skip:n]
	copy(b, q[copy(a, q):])
	return n
}

// Extend makes the n bytes at offsets [Len, Len+n) readable: Len grows by n
// (RCV.NXT advanced by n over data placed with WriteAt). It panics unless
// 0 <= n <= Free().
func (r *Ring) Extend(n int) {
	if n < 0 || n > r.Free() {
		panic(fmt.Sprintf("buffer: Extend(%d) with Free %d", n, r.Free()))
	}
	r.n += n
}

// Slices returns the at most two contiguous slices of the ring's storage
// that cover the readable bytes at offsets [off, off+n), in order: a holds
// the first bytes and b the rest (b is nil when no wrap is involved, both
// are nil when n == 0). The slices alias the ring: they are valid until the
// next Write, WriteAt, Discard, Read or Grow, and have their capacity
// limited to their length. It panics unless 0 <= off, 0 <= n and
// off+n <= Len().
func (r *Ring) Slices(off, n int) (a, b []byte) {
	if off < 0 || n < 0 || off+n > r.n {
		panic(fmt.Sprintf("buffer: Slices(%d, %d) with Len %d", off, n, r.n))
	}
	return r.span(off, n)
}

// Grow raises the capacity to newCap, keeping the readable bytes and the
// contents of the free space (data parked with WriteAt stays at its offset).
// It does nothing when newCap <= Cap(). It allocates; it is meant for
// receive-buffer auto-tuning, off the per-packet path.
func (r *Ring) Grow(newCap int) {
	if newCap <= len(r.buf) {
		return
	}
	nb := make([]byte, newCap)
	a, b := r.span(0, len(r.buf))
	copy(nb[copy(nb, a):], b)
	r.buf, r.head = nb, 0
}
