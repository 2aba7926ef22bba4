package ixgbesim

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// Interrupts (datasheet 7.3; registers 8.2.3.5).
//
// Causes set bits of EICR: a queue's RX or TX cause sets the bit of the
// vector its IVAR entry names (7.3.4), a link change sets LSC, a write to
// EICS sets the written bits. EIMS/EIMC set and clear the mask. In MSI-X
// mode (GPIE.MSIX_MODE) a vector's message is sent when one of its causes
// is set while unmasked, or when its mask is set while a cause is pending;
// with the message, the causes of the vector that are set in EIAC are
// cleared from EICR (auto-clear) and, with GPIE.EIAME, those set in EIAM
// are cleared from EIMS (auto-mask, 7.3.1). Queue vectors are 0..15 (EICR
// bits 15:0); the other causes (LSC, bits 30:16) go to the vector in
// IVAR_MISC's "other" entry (bits 15:8). Without MSI-X, vector 0 is the
// single MSI/INTx interrupt: it fires when EICR & EIMS becomes non-zero, and
// a read of EICR clears the EIAM bits of what it read from EIMS.
//
// EITR[v] bits 11:3 (ITR interval, 2.048 us units, 7.3.2.1) throttle
// vector v: a message less than the interval after the previous one is
// held back and sent when the interval has passed (on the NIC's clock: in
// Stepped mode when the test advances the virtual clock), if a cause is
// still pending and unmasked then.
//
// Messages are delivered to an Interrupts, one counter and channel per
// vector, with the semantics of an eventfd (what VFIO gives a real
// device's vectors): Wait returns how many messages arrived since the last
// Wait.

// NumVectors is the number of MSI-X vectors the model delivers.
const NumVectors = 16

// eitrUnit is the EITR interval unit at 10 Gb/s (7.3.2.1).
const eitrUnit = 2048 * time.Nanosecond

// ErrInterruptsClosed is returned by Interrupts.Wait after the NIC closed.
var ErrInterruptsClosed = errors.New("ixgbesim: interrupts: NIC closed")

// otherCauses are the EICR bits that are not queue vectors.
const otherCauses = 0x7FFF0000

// Interrupts is the NIC's interrupt delivery (its MSI-X table).
type Interrupts struct {
	n      *NIC
	count  [NumVectors]atomic.Uint64
	ch     [NumVectors]chan struct{}
	closed chan struct{}

	mu       sync.Mutex // message decisions and EITR state
	last     [NumVectors]int64
	fired    [NumVectors]bool // a message has been sent (last is valid)
	deferred [NumVectors]bool
	dcauses  [NumVectors]uint32 // causes of the held-back message
	expireFn [NumVectors]func() // preallocated: no allocation per message
}

func (in *Interrupts) init(n *NIC) {
	in.n = n
	for v := range in.ch {
		in.ch[v] = make(chan struct{}, 1)
		in.expireFn[v] = func() { in.expire(v) }
	}
	in.closed = make(chan struct{})
}

// Interrupts returns the NIC's interrupt delivery.
func (n *NIC) Interrupts() *Interrupts { return &n.intr }

// C returns the channel that receives a value (coalesced) when vector v
// fires.
func (in *Interrupts) C(v int) <-chan struct{} { return in.ch[v] }

// Count returns how many messages vector v has delivered that no Wait has
// consumed yet.
func (in *Interrupts) Count(v int) uint64 { return in.count[v].Load() }

// Wait blocks until vector v has fired since the last Wait (or timeout
// passes; a negative timeout waits for ever, 0 only polls) and returns how
// many times, resetting the count: an eventfd's read, as vfio.Interrupts.Wait.
// A timeout returns 0 and no error.
func (in *Interrupts) Wait(v int, timeout time.Duration) (uint64, error) {
	if v < 0 || v >= NumVectors {
		return 0, errors.New("ixgbesim: interrupts: no such vector")
	}
	var t *time.Timer
	var tc <-chan time.Time
	for {
		if c := in.count[v].Swap(0); c > 0 {
			if t != nil {
				t.Stop()
			}
			return c, nil
		}
		select {
		case <-in.closed:
			return 0, ErrInterruptsClosed
		default:
		}
		if timeout == 0 {
			return 0, nil
		}
		if timeout > 0 && t == nil {
			t = time.NewTimer(timeout)
			tc = t.C
		}
		select {
		case <-in.ch[v]:
		case <-tc:
			return in.count[v].Swap(0), nil
		case <-in.closed:
			if t != nil {
				t.Stop()
			}
			return 0, ErrInterruptsClosed
		}
	}
}

func (in *Interrupts) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	select {
	case <-in.closed:
	default:
		close(in.closed)
	}
}

// raise sets cause bits in EICR and sends the messages they call for.
func (n *NIC) raise(causes uint32) {
	if causes == 0 {
		return
	}
	n.cellOr(regs.EICR, causes)
	if n.reg(regs.EIMS)&causes == 0 {
		return // masked (the polling driver's case): one load
	}
	n.intrEval(causes)
}

// intrEval sends the messages due for the given (newly set or newly
// unmasked) bits.
func (n *NIC) intrEval(bits uint32) {
	in := &n.intr
	in.mu.Lock()
	defer in.mu.Unlock()
	if n.reg(regs.GPIE)&regs.GPIE_MSIX_MODE == 0 {
		if n.reg(regs.EICR)&n.reg(regs.EIMS) != 0 {
			in.fireLocked(0, 0)
		}
		return
	}
	pending := n.reg(regs.EICR) & n.reg(regs.EIMS) & bits
	for v := 0; v < NumVectors; v++ {
		if pending&(1<<v) != 0 {
			in.fireLocked(v, 1<<v)
		}
	}
	if pending&otherCauses != 0 {
		if e := n.reg(regIVAR_MISC) >> 8 & 0xFF; e&regs.IVAR_ALLOC_VAL != 0 {
			in.fireLocked(int(e&0xF), pending&otherCauses)
		}
	}
}

// fireLocked sends vector v's message for causes (MSI-X; 0 for the single
// MSI/INTx vector), unless EITR holds it back.
func (in *Interrupts) fireLocked(v int, causes uint32) {
	n := in.n
	if iv := time.Duration(n.reg(regs.EITR(v))>>3&0x1FF) * eitrUnit; iv > 0 && in.fired[v] {
		now := n.clock.nowNanoNoLock()
		if wait := in.last[v] + int64(iv) - now; wait > 0 {
			in.dcauses[v] |= causes
			if !in.deferred[v] {
				in.deferred[v] = true
				n.clock.AfterFunc(time.Duration(wait), in.expireFn[v])
			}
			return
		}
	}
	in.last[v] = n.clock.nowNanoNoLock()
	in.fired[v] = true
	if causes != 0 {
		// Auto-clear (EIAC) and, with GPIE.EIAME, auto-mask (EIAM) on
		// the message (7.3.1, 8.2.3.5).
		n.cellAnd(regs.EICR, ^(causes & n.reg(regs.EIAC)))
		if n.reg(regs.GPIE)&regs.GPIE_EIAME != 0 {
			n.cellAnd(regs.EIMS, ^(causes & n.reg(regs.EIAM)))
		}
	}
	in.count[v].Add(1)
	select {
	case in.ch[v] <- struct{}{}:
	default:
	}
}

// expire ends an EITR interval: the held-back message goes out if its
// causes are still pending and unmasked.
func (in *Interrupts) expire(v int) {
	n := in.n
	in.mu.Lock()
	in.deferred[v] = false
	causes := in.dcauses[v]
	in.dcauses[v] = 0
	in.mu.Unlock()
	if causes == 0 {
		n.intrEval(0)
		return
	}
	n.intrEval(causes)
}

// readEICR is a read of EICR (8.2.3.5.1): it returns the causes and clears
// them; without MSI-X, the EIAM bits of what was read are cleared from
// EIMS (auto-mask on read, 7.3.1).
func (n *NIC) readEICR(c *atomic.Uint32) uint32 {
	v := c.Swap(0)
	if v != 0 && n.reg(regs.GPIE)&regs.GPIE_MSIX_MODE == 0 {
		if m := v & n.reg(regs.EIAM); m != 0 {
			n.cellAnd(regs.EIMS, ^m)
		}
	}
	return v
}
