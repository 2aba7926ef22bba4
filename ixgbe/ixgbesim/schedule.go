package ixgbesim

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// Schedule makes the simulated device take choices the datasheet leaves
// open but a well-behaved run rarely shows, so that a driver relying on
// one particular timing fails its tests. The zero Schedule is the model's
// ordinary behaviour. A correct driver works under every schedule.
//
//   - FetchAtDoorbell: the device reads the descriptors a tail write hands
//     over in the tail-write path itself (its descriptor prefetch, 7.1.3.2
//     and 7.2.3.4, at its earliest) and later processes them from that
//     copy, never re-reading memory. A driver that writes the tail before
//     the descriptors has the device process what was there before.
//   - StatusFirst: the RX write-back stores the status word (DD) before
//     the length word; by default, as in the model's ordinary behaviour,
//     the length goes first and DD last. 7.1.6.2 gives the write-back's
//     layout, not the order of its stores: a driver must not trust a
//     length it read before the device stored it. (A TX write-back is one
//     status store: nothing to reorder.)
//   - Split: a delay between the write-back's last two stores (length and
//     status, in the order chosen): in Stepped mode the second store is a
//     step of its own (the next Step, StepRx or Drain pass does it first);
//     FreeRunning, the engine yields the processor between them. Only the
//     last descriptor of a frame is split.
//   - Seed (non-zero): random choices from a generator seeded with it:
//     per tail write whether its descriptors are fetched at the doorbell,
//     per write-back the order of its stores and whether they are split,
//     the size of each engine burst (1 to 64 descriptors per queue), and,
//     FreeRunning, yields between bursts. The fixed switches above then
//     stay on where set; the seed decides the rest.
type Schedule struct {
	FetchAtDoorbell bool
	StatusFirst     bool
	Split           bool
	Seed            uint64
}

// ScheduleNames lists the words ParseSchedule takes.
const ScheduleNames = "default, doorbell, status-first, length-first, split, random"

// ParseSchedule reads a schedule from a comma-separated list of words:
// "default" (or ""), "doorbell" (FetchAtDoorbell), "status-first",
// "length-first" (the default order, named for symmetry), "split", and
// "random" (random choices from seed; a zero seed is taken as 1).
func ParseSchedule(s string, seed uint64) (Schedule, error) {
	var sc Schedule
	order := ""
	for _, w := range strings.Split(s, ",") {
		switch w = strings.TrimSpace(w); w {
		case "", "default":
		case "doorbell":
			sc.FetchAtDoorbell = true
		case "status-first", "length-first":
			if order != "" && order != w {
				return Schedule{}, fmt.Errorf("schedule %q: both status-first and length-first", s)
			}
			order = w
			sc.StatusFirst = w == "status-first"
		case "split":
			sc.Split = true
		case "random":
			sc.Seed = seed
			if sc.Seed == 0 {
				sc.Seed = 1
			}
		default:
			return Schedule{}, fmt.Errorf("schedule %q: unknown word %q (want a comma-separated list of %s)", s, w, ScheduleNames)
		}
	}
	return sc, nil
}

// String writes the schedule as ParseSchedule reads it (the seed apart).
func (s Schedule) String() string {
	var w []string
	if s.FetchAtDoorbell {
		w = append(w, "doorbell")
	}
	if s.StatusFirst {
		w = append(w, "status-first")
	}
	if s.Split {
		w = append(w, "split")
	}
	if s.Seed != 0 {
		w = append(w, fmt.Sprintf("random(seed %d)", s.Seed))
	}
	if len(w) == 0 {
		return "default"
	}
	return strings.Join(w, ",")
}

// schedState is a NIC's schedule at run time.
type schedState struct {
	Schedule
	on      bool // any choice differs from the ordinary behaviour
	stepped bool

	mu  sync.Mutex // the generator: engines and tail writes draw from it
	rng *rand.Rand

	// pendRx is the RX queue holding back a split write-back's second
	// store (Stepped mode; under pb.mu); the store itself is the queue's
	// pend (under its mu).
	pendRx *rxQueue
}

func (s *schedState) init(sc Schedule, mode Mode) {
	s.Schedule = sc
	s.on = sc != Schedule{}
	s.stepped = mode == Stepped
	if sc.Seed != 0 {
		s.rng = rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9E3779B97F4A7C15))
	}
}

// coin returns a random choice (false without a seed).
func (s *schedState) coin() bool {
	if s.rng == nil {
		return false
	}
	s.mu.Lock()
	b := s.rng.Uint64()&1 != 0
	s.mu.Unlock()
	return b
}

// fetchAtDoorbell decides for one tail write.
func (s *schedState) fetchAtDoorbell() bool { return s.FetchAtDoorbell || s.coin() }

// budget returns the descriptors per queue of the next engine pass.
func (s *schedState) budget(max int) int {
	if s.rng == nil {
		return max
	}
	s.mu.Lock()
	b := 1 + s.rng.IntN(max)
	s.mu.Unlock()
	return b
}

// yield gives the processor away now and then (FreeRunning, with a seed),
// so that the driver's goroutines run between the device's steps.
func (s *schedState) yield() {
	if s.rng != nil && !s.stepped && s.coin() {
		runtime.Gosched()
	}
}

// scheduled prepares the ring for a schedule (on) or for none: the record
// of descriptors fetched at the doorbell exists only under a schedule.
func (r *ring) scheduled(on bool) {
	switch {
	case !on:
		r.cached = nil
	case cap(r.cached) >= int(r.size):
		r.cached = r.cached[:r.size]
		clear(r.cached)
	default:
		r.cached = make([]bool, r.size)
	}
}

// view returns the contents the engine processes for descriptor i, whose
// memory is d: the copy taken at the doorbell when the descriptor was
// fetched there (FetchAtDoorbell), else d itself.
func (r *ring) view(i uint32, d []byte) []byte {
	if r.cached == nil || !r.cached[i] {
		return d
	}
	return r.snap[i*regs.DescSize : (i+1)*regs.DescSize]
}

// rxPend is a write-back store held back for a step of its own.
type rxPend struct {
	valid bool
	d     []byte
	idx   uint32
	off   int
	val   uint32
}

// writeBack stores descriptor i's RX write-back into d (the slow path of
// dmaFrame: with a recorder, each store is recorded first; with a
// schedule, the order and timing of the last two stores follow it). In
// the advanced format (7.1.6.2) dwords 0 (packet info w0) and 1 (RSS hash
// or checksum w1) go first, then the length and VLAN (dword 3) and the
// status (dword 2, with DD), length first unless the schedule says
// otherwise; in the legacy format (7.1.5) the length (dword 2), then the
// status, errors and VLAN (dword 3). Words stored before DD are published
// by its atomic store; a length stored after DD is stored atomically
// itself, since a driver may load it at any time. last says whether d is a
// frame's last descriptor (the one a split may hold back).
func (q *rxQueue) writeBack(d []byte, i uint32, legacy, last bool, w0, w1, length, status uint32, vlan uint16) {
	n := q.n
	lenOff, stOff := regs.RXD_WB_LENGTH, regs.RXD_WB_STATUS_ERROR
	lw, sw := length|uint32(vlan)<<16, status
	if legacy {
		lenOff, stOff = 8, 12
		lw, sw = length, legacyStatus(status)|uint32(vlan)<<16
	} else {
		q.store(d, i, regs.RXD_WB_PKT_INFO, w0, false)
		q.store(d, i, regs.RXD_WB_RSS, w1, false)
	}
	statusFirst, split := false, false
	if s := &n.sched; s.on {
		statusFirst = s.StatusFirst || s.coin()
		split = last && (s.Split || s.coin())
	}
	firstOff, firstVal, secondOff, secondVal := lenOff, lw, stOff, sw
	if statusFirst {
		firstOff, firstVal, secondOff, secondVal = stOff, sw, lenOff, lw
	}
	q.store(d, i, firstOff, firstVal, statusFirst)
	if split {
		if n.sched.stepped {
			// The second store is a step of its own (completeRxPend).
			q.pend = rxPend{valid: true, d: d, idx: i, off: secondOff, val: secondVal}
			n.sched.pendRx = q
			return
		}
		runtime.Gosched()
	}
	q.store(d, i, secondOff, secondVal, true)
}

// store is one write-back store into descriptor i, recorded first with a
// recorder; atomic stores the word with an atomic store (DD, or a word
// stored after DD).
func (q *rxQueue) store(d []byte, i uint32, off int, v uint32, atomic bool) {
	if q.n.tr != nil {
		q.n.traceStore(trace.RX, q.idx, i, off, v)
	}
	if atomic {
		store32(d, off, v)
	} else {
		storePlain32(d, off, v)
	}
}

// completeRxPend makes the store a split write-back held back (pb.mu
// held), as a step of the RX engine; it reports whether there was one.
func (n *NIC) completeRxPend() bool {
	q := n.sched.pendRx
	if q == nil {
		return false
	}
	n.sched.pendRx = nil
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pend
	q.pend = rxPend{}
	if !p.valid {
		return false // the queue was reset meanwhile
	}
	q.store(p.d, p.idx, p.off, p.val, true)
	return true
}
