package ixgbesim

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Faults configures fault injection on one direction of a Cable. Rates are
// probabilities per frame in [0, 1]; the decisions are drawn from a
// generator seeded with Seed, so a run is reproducible given the same
// frames in the same order.
type Faults struct {
	Seed      int64
	Drop      float64 // frame lost
	Corrupt   float64 // one byte flipped, so the receiver's FCS check fails
	Duplicate float64 // frame delivered twice
	Reorder   float64 // frame held back and delivered after the next one
	// Delay holds every frame this long before delivery (on the receiving
	// NIC's clock: virtual in Stepped mode, so the test must Sleep).
	Delay time.Duration
	// ReorderHold bounds how long a held-back frame waits for a successor
	// before it is delivered anyway (default 1 ms).
	ReorderHold time.Duration
	// LineLimit bounds the frames in flight on the delay line (default
	// 4096); frames beyond it are lost and counted in Overflow.
	LineLimit int
}

// DirStats accounts for every frame offered to one direction of a cable:
//
//	Offered + Duplicated == Delivered + Dropped + LinkDown + Overflow + InFlight
type DirStats struct {
	Offered    uint64 // frames transmitted into the cable
	Delivered  uint64 // frames handed to the receiving NIC (copies included)
	Accepted   uint64 // of those, accepted by the receiver's MAC (Receive returned true)
	Dropped    uint64 // lost by fault injection
	Corrupted  uint64 // delivered with a flipped byte
	Duplicated uint64 // extra copies made
	Reordered  uint64 // held back to follow their successor
	Delayed    uint64 // put on the delay line
	LinkDown   uint64 // lost because the cable was down (including frames in flight when it went down)
	Overflow   uint64 // lost because the delay line was full
	InFlight   uint64 // on the delay line or held back now
}

// CableStats holds both directions' accounting.
type CableStats struct {
	AB, BA DirStats
}

// Cable joins two simulated NICs back to back in memory, with fault
// injection per direction.
type Cable struct {
	a, b   *NIC
	up     atomic.Bool
	ab, ba *direction
}

type lineSlot struct {
	due time.Time
	buf []byte
}

type direction struct {
	c     *Cable
	to    *NIC
	clock *Clock
	f     Faults
	rng   *rand.Rand

	mu      sync.Mutex
	stats   DirStats
	scratch []byte
	held    []byte
	hasHeld bool
	heldDue time.Time
	line    []lineSlot
	lh, ln  int

	// A fault-free direction carries frames without its lock: a MAC's
	// PAUSE frame while another goroutine holds mu (see trySend), and a TX
	// engine's bursts (transmitFCS with a wireTally). Those are counted
	// here, without the lock, and added in snapshot.
	faultFree                        bool
	whole                            []byte // a fcsAbsent frame with its FCS (sendLocked)
	ctlOffered, ctlDelivered, ctlAcc atomic.Uint64
	ctlLinkDown                      atomic.Uint64
}

// cableEnd is the Link a NIC sees: transmitting sends into one direction.
type cableEnd struct {
	c   *Cable
	out *direction
}

func (e *cableEnd) Transmit(frame []byte) { e.out.send(frame, fcsCheck) }

// fcsTransmitter is a Link that can carry the sender's word that a frame's
// FCS is the one its MAC computes over these bytes (fcsState), and that
// counts a burst's frames in the sending engine's tally t (added to the
// wire's statistics by t.flush) where it can deliver them without a lock.
type fcsTransmitter interface {
	Link
	transmitFCS(frame []byte, st fcsState, t *wireTally)
	// direct reports whether transmitFCS takes fcsAbsent frames: the
	// frame goes straight to the receiving MAC, unchanged and not held.
	direct() bool
}

// wireTally counts, under the sending TX queue's lock, the frames of a
// burst that went straight through a fault-free cable direction; flush adds
// them to the direction's statistics once per burst instead of taking the
// direction's lock per frame.
type wireTally struct {
	d                                     *direction
	offered, delivered, accepted, linkDwn uint64
}

// flush adds the tally to its direction's statistics and clears it.
func (t *wireTally) flush() {
	d := t.d
	if d == nil || t.offered == 0 {
		return
	}
	delivered := t.accepted > 0
	d.ctlDelivered.Add(t.delivered)
	d.ctlAcc.Add(t.accepted)
	d.ctlLinkDown.Add(t.linkDwn)
	d.ctlOffered.Add(t.offered)
	*t = wireTally{d: d}
	if delivered {
		d.to.rxDoorbell() // the burst's frames are in the packet buffer
	}
}

// fcsState is what is known of a frame's last four bytes, its FCS, as it
// crosses a cable.
type fcsState uint8

const (
	// fcsCheck: nothing is known; the receiving MAC checks the FCS.
	fcsCheck fcsState = iota
	// fcsGood: the sending MAC computed it over these bytes.
	fcsGood
	// fcsLazy: the sending MAC appends an FCS but has not computed it yet:
	// the four bytes are not written. Whoever reads them first (a cable
	// that may change or hold the frame, a receiving MAC that stores the
	// FCS) computes them with fillFCS; a receiver that strips the FCS never
	// needs them. The buffer is the sending engine's, writable while it
	// transmits.
	fcsLazy
	// fcsAbsent: as fcsLazy, but the frame slice ends before the FCS: it
	// is the packet data in host memory, read-only to the device, which a
	// single-descriptor frame's TX DMA hands to a fault-free cable
	// directly instead of copying it into the engine's buffer first. The
	// frame on the wire is len(frame)+4 bytes; a receiving MAC that keeps
	// the FCS computes it into its packet buffer. Only transmitFCS on a
	// fault-free direction with a tally carries it (fcsTransmitter.direct).
	fcsAbsent
)

// fillFCS writes the FCS of frame (its last four bytes) over the rest
// (IEEE 802.3 CRC-32, as the MAC appends it).
func fillFCS(frame []byte) {
	l := len(frame) - 4
	binary.LittleEndian.PutUint32(frame[l:], crc32.ChecksumIEEE(frame[:l]))
}

func (e *cableEnd) direct() bool { return e.out.faultFree }

func (e *cableEnd) transmitFCS(frame []byte, st fcsState, t *wireTally) {
	d := e.out
	if !d.faultFree || t == nil {
		d.send(frame, st)
		return
	}
	// Fault-free: nothing to decide under the lock, the frame goes
	// through unchanged (as in trySend).
	if t.d != d {
		t.flush()
		t.d = d
	}
	t.offered++
	if !d.c.up.Load() {
		t.linkDwn++
		return
	}
	t.delivered++
	if d.to.receive(frame, st, false) {
		t.accepted++ // the receiver's doorbell rings at flush
	}
}

// TryTransmit implements tryTransmitter: it sends only if neither the
// clock's nor the direction's lock is held elsewhere, so that a MAC may
// answer from its receive path (under the other direction's lock) without
// risking a lock cycle.
func (e *cableEnd) TryTransmit(frame []byte) bool { return e.out.trySend(frame) }
func (e *cableEnd) Up() bool                      { return e.c.up.Load() }

func (e *cableEnd) detach(n *NIC) {
	for _, d := range []*direction{e.c.ab, e.c.ba} {
		d.clock.removePoller(d)
	}
}

// Connect wires a and b together (the cable is up) and returns the cable.
// ab configures faults on frames from a to b, ba from b to a; nil means a
// perfect wire. Both links then train (LINKS.UP after LinkUpDelay).
func Connect(a, b *NIC, ab, ba *Faults) *Cable {
	c := &Cable{a: a, b: b}
	c.up.Store(true)
	c.ab = newDirection(c, b, ab)
	c.ba = newDirection(c, a, ba)
	a.Attach(&cableEnd{c: c, out: c.ab})
	b.Attach(&cableEnd{c: c, out: c.ba})
	return c
}

func newDirection(c *Cable, to *NIC, f *Faults) *direction {
	d := &direction{c: c, to: to, clock: to.clock}
	if f != nil {
		d.f = *f
	}
	for _, r := range []*float64{&d.f.Drop, &d.f.Corrupt, &d.f.Duplicate, &d.f.Reorder} {
		if math.IsNaN(*r) || *r < 0 {
			*r = 0
		}
		if *r > 1 {
			*r = 1
		}
	}
	if d.f.Delay < 0 {
		d.f.Delay = 0
	}
	if d.f.ReorderHold <= 0 {
		d.f.ReorderHold = time.Millisecond
	}
	if d.f.LineLimit <= 0 {
		d.f.LineLimit = 4096
	}
	d.faultFree = d.f.Drop == 0 && d.f.Corrupt == 0 && d.f.Duplicate == 0 && d.f.Reorder == 0 && d.f.Delay == 0
	seed := uint64(d.f.Seed)
	d.rng = rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	d.scratch = make([]byte, 0, maxFrame)
	if d.f.Delay > 0 || d.f.Reorder > 0 {
		d.line = make([]lineSlot, d.f.LineLimit)
		d.clock.addPoller(d)
	}
	return d
}

// SetLinkUp plugs (true) or pulls (false) the cable. Pulling it loses the
// frames in flight; both NICs see their link drop (EICR.LSC) and retrain
// when it is plugged back.
func (c *Cable) SetLinkUp(up bool) {
	if c.up.Swap(up) == up {
		return
	}
	if !up {
		c.ab.loseInFlight()
		c.ba.loseInFlight()
	}
	c.a.pollLink()
	c.b.pollLink()
}

// Up reports whether the cable is plugged.
func (c *Cable) Up() bool { return c.up.Load() }

// Stats returns both directions' accounting.
func (c *Cable) Stats() CableStats {
	return CableStats{AB: c.ab.snapshot(), BA: c.ba.snapshot()}
}

// Flush delivers every frame in flight (delayed or held back) now.
func (c *Cable) Flush() {
	c.ab.flush()
	c.ba.flush()
}

func (d *direction) snapshot() DirStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Offered += d.ctlOffered.Load()
	s.Delivered += d.ctlDelivered.Load()
	s.Accepted += d.ctlAcc.Load()
	s.LinkDown += d.ctlLinkDown.Load()
	s.InFlight = uint64(d.ln)
	if d.hasHeld {
		s.InFlight++
	}
	return s
}

func (d *direction) roll(p float64) bool {
	return p > 0 && d.rng.Float64() < p
}

func (d *direction) send(frame []byte, st fcsState) {
	// The clock is read before d.mu is taken: the clock's lock is taken
	// before d.mu when the clock polls the delay line. A fault-free
	// direction delivers at once and needs no time (nor the virtual
	// clock's lock).
	var now time.Time
	if !d.faultFree {
		now = d.clock.Now()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sendLocked(frame, now, st)
}

// trySend is send without waiting. It reports false, sending nothing, if
// a lock it needs is taken -- except on a fault-free direction, where
// there is nothing to decide under the lock: the frame (a PAUSE) is
// delivered at once, concurrently with any frame being delivered, as the
// MAC sends it right after the frame on the wire. Both MACs of a cable
// pausing each other at once (each delivering a data frame under its
// direction's lock, each needing the other direction for its XOFF) would
// otherwise both have to give up.
func (d *direction) trySend(frame []byte) bool {
	if now, ok := d.clock.tryNow(); ok && d.mu.TryLock() {
		defer d.mu.Unlock()
		d.sendLocked(frame, now, fcsCheck)
		return true
	}
	if !d.faultFree {
		return false
	}
	d.ctlOffered.Add(1)
	if !d.c.up.Load() {
		d.ctlLinkDown.Add(1)
		return true
	}
	d.ctlDelivered.Add(1)
	if d.to.Receive(frame) {
		d.ctlAcc.Add(1)
	}
	return true
}

// sendLocked carries a frame; st says what is known of its FCS, which holds
// on delivery only if the frame goes straight through unchanged (a lazy
// FCS is computed first on a cable with faults).
func (d *direction) sendLocked(frame []byte, now time.Time, st fcsState) {
	if st == fcsAbsent {
		// Not sent this way (direct() is false with faults); should it be,
		// the frame is completed with its FCS in a buffer of the cable's.
		d.whole = append(d.whole[:0], frame...)
		d.whole = binary.LittleEndian.AppendUint32(d.whole, crc32.ChecksumIEEE(frame))
		frame, st = d.whole, fcsGood
	}
	if st == fcsLazy && !d.faultFree {
		fillFCS(frame)
		st = fcsGood
	}
	d.stats.Offered++
	if !d.c.up.Load() {
		d.stats.LinkDown++
		return
	}
	if d.roll(d.f.Drop) {
		d.stats.Dropped++
		return
	}
	buf := frame
	if d.f.Corrupt > 0 {
		// Corruption flips a byte of a private copy; otherwise the frame
		// is delivered (or copied onto the delay line) as it is.
		buf = append(d.scratch[:0], frame...)
		d.scratch = buf[:0]
	}
	if len(buf) > 0 && d.roll(d.f.Corrupt) {
		st = fcsCheck
		pos := d.rng.IntN(len(buf))
		buf[pos] ^= byte(1 + d.rng.IntN(255))
		d.stats.Corrupted++
	}
	copies := 1
	if d.roll(d.f.Duplicate) {
		copies = 2
		d.stats.Duplicated++
	}
	for ; copies > 0; copies-- {
		switch {
		case d.hasHeld:
			// The held frame follows this one: the pair is swapped.
			d.emit(buf, now)
			d.hasHeld = false
			d.emit(d.held, now)
		case d.roll(d.f.Reorder):
			d.held = append(d.held[:0], buf...)
			d.hasHeld = true
			d.heldDue = now.Add(d.f.ReorderHold)
			d.stats.Reordered++
		default:
			if d.f.Delay <= 0 {
				d.deliverFCS(buf, st)
			} else {
				d.emit(buf, now)
			}
		}
	}
}

// emit puts a frame on the delay line, or delivers it at once.
func (d *direction) emit(b []byte, now time.Time) {
	if d.f.Delay <= 0 {
		d.deliver(b)
		return
	}
	if d.ln == len(d.line) {
		d.stats.Overflow++
		return
	}
	s := &d.line[(d.lh+d.ln)%len(d.line)]
	s.due = now.Add(d.f.Delay)
	s.buf = append(s.buf[:0], b...)
	d.ln++
	d.stats.Delayed++
}

func (d *direction) deliver(b []byte) { d.deliverFCS(b, fcsCheck) }

func (d *direction) deliverFCS(b []byte, st fcsState) {
	d.stats.Delivered++
	if d.to.receive(b, st, true) {
		d.stats.Accepted++
	}
}

// nextDue implements poller.
func (d *direction) nextDue() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var at time.Time
	ok := false
	if d.ln > 0 {
		at, ok = d.line[d.lh].due, true
	}
	if d.hasHeld && (!ok || d.heldDue.Before(at)) {
		at, ok = d.heldDue, true
	}
	return at, ok
}

// runDue implements poller: delivers what is due at now.
func (d *direction) runDue(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hasHeld && !d.heldDue.After(now) {
		d.hasHeld = false
		d.emit(d.held, now)
	}
	for d.ln > 0 && !d.line[d.lh].due.After(now) {
		s := &d.line[d.lh]
		d.lh = (d.lh + 1) % len(d.line)
		d.ln--
		d.deliver(s.buf)
	}
}

func (d *direction) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hasHeld {
		d.hasHeld = false
		d.deliver(d.held)
	}
	for d.ln > 0 {
		s := &d.line[d.lh]
		d.lh = (d.lh + 1) % len(d.line)
		d.ln--
		d.deliver(s.buf)
	}
}

func (d *direction) loseInFlight() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.LinkDown += uint64(d.ln)
	d.lh, d.ln = 0, 0
	if d.hasHeld {
		d.stats.LinkDown++
		d.hasHeld = false
	}
}
