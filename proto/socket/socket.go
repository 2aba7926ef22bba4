// Package socket holds what every socket of the stack shares, whatever its
// protocol: deadlines with the standard library's semantics, readiness
// notification between the poll loop and application goroutines, the
// closed state, pending soft errors, and a bounded queue of datagrams.
//
// Threading: a socket is written by its poll loop (delivery of received
// data, errors) and read by any number of application goroutines. Every
// field here is safe for that use; waiting is a select over channels, so a
// blocked reader wakes on data, on its deadline, or on Close.
package socket

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/verinic/verinic/proto/clock"
)

// Errors a socket operation returns. They are the standard library's own
// values, so errors.Is(err, os.ErrDeadlineExceeded) and
// errors.Is(err, net.ErrClosed) work as with package net.
var (
	ErrClosed           = net.ErrClosed
	ErrDeadlineExceeded = os.ErrDeadlineExceeded
)

// Deadline is a point in time after which an operation fails, as set by
// net.Conn's SetReadDeadline: the zero time means none; a time in the past
// makes pending and future operations fail at once; extending it makes them
// wait again. Done returns a channel that is closed while the deadline has
// passed.
type Deadline struct {
	mu      sync.Mutex
	clock   clock.Clock
	timer   clock.Timer
	ch      chan struct{}
	expired bool
	gen     uint64
}

// Init prepares d to measure time on c.
func (d *Deadline) Init(c clock.Clock) {
	d.clock = c
	d.ch = make(chan struct{})
}

// Set moves the deadline to t (the zero time clears it).
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		d.reopen()
		return
	}
	wait := t.Sub(d.clock.Now())
	if wait <= 0 {
		d.expire()
		return
	}
	d.reopen()
	gen := d.gen
	d.timer = d.clock.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			d.expire()
		}
	})
}

func (d *Deadline) reopen() {
	if d.expired {
		d.ch = make(chan struct{})
		d.expired = false
	}
}

func (d *Deadline) expire() {
	if !d.expired {
		close(d.ch)
		d.expired = true
	}
}

// Done returns a channel closed once the deadline has passed. Take it anew
// for each wait: setting a later deadline replaces a closed channel.
func (d *Deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// Expired reports whether the deadline has passed.
func (d *Deadline) Expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// Stop releases the deadline's timer.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// Notifier wakes one waiter when something becomes ready. Notifications do
// not accumulate: several Notify calls before a wait wake it once, so a
// waiter re-checks its condition, and one that leaves work behind calls
// Notify again for the next waiter.
type Notifier struct {
	ch chan struct{}
}

// Init prepares n.
func (n *Notifier) Init() { n.ch = make(chan struct{}, 1) }

// Notify wakes a waiter, or the next one to wait. It never blocks.
func (n *Notifier) Notify() {
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

// C is the channel a waiter receives from.
func (n *Notifier) C() <-chan struct{} { return n.ch }

// Base is the state every socket shares: deadlines, readiness, closed state
// and the pending soft error (an ICMP error reported to a connected socket,
// returned once by the next operation, as Linux's sk_err).
type Base struct {
	ReadDeadline  Deadline
	WriteDeadline Deadline
	Readable      Notifier
	Writable      Notifier

	closeOnce sync.Once
	closed    chan struct{}

	errMu   sync.Mutex
	softErr error
}

// Init prepares b with clock c.
func (b *Base) Init(c clock.Clock) {
	b.ReadDeadline.Init(c)
	b.WriteDeadline.Init(c)
	b.Readable.Init()
	b.Writable.Init()
	b.closed = make(chan struct{})
}

// MarkClosed closes the socket's closed channel, waking every waiter. It
// reports whether this call was the one that closed it.
func (b *Base) MarkClosed() bool {
	first := false
	b.closeOnce.Do(func() {
		close(b.closed)
		first = true
		b.ReadDeadline.Stop()
		b.WriteDeadline.Stop()
	})
	return first
}

// IsClosed reports whether MarkClosed has been called.
func (b *Base) IsClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// Closed returns a channel closed when the socket is.
func (b *Base) Closed() <-chan struct{} { return b.closed }

// SetSoftError records err for the next operation to return.
func (b *Base) SetSoftError(err error) {
	b.errMu.Lock()
	b.softErr = err
	b.errMu.Unlock()
	b.Readable.Notify()
}

// TakeSoftError returns the pending soft error, if any, and clears it.
func (b *Base) TakeSoftError() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	err := b.softErr
	b.softErr = nil
	return err
}

// CheckRead returns the error a read must fail with before trying to read
// (closed socket, passed deadline), as the standard library's poller does.
func (b *Base) CheckRead() error {
	if b.IsClosed() {
		return ErrClosed
	}
	if b.ReadDeadline.Expired() {
		return ErrDeadlineExceeded
	}
	return nil
}

// CheckWrite is CheckRead for writes.
func (b *Base) CheckWrite() error {
	if b.IsClosed() {
		return ErrClosed
	}
	if b.WriteDeadline.Expired() {
		return ErrDeadlineExceeded
	}
	return nil
}

// WaitReadable blocks until the socket may have become readable, its read
// deadline passes, or it is closed.
func (b *Base) WaitReadable() error {
	select {
	case <-b.Readable.C():
		return nil
	case <-b.ReadDeadline.Done():
		return ErrDeadlineExceeded
	case <-b.closed:
		return ErrClosed
	}
}

// WaitWritable blocks until the socket may have become writable (space was
// freed on ready), its write deadline passes, or it is closed.
func (b *Base) WaitWritable(ready <-chan struct{}) error {
	select {
	case <-ready:
		return nil
	case <-b.WriteDeadline.Done():
		return ErrDeadlineExceeded
	case <-b.closed:
		return ErrClosed
	}
}

// SetReadDeadline sets the read deadline (net.Conn semantics).
func (b *Base) SetReadDeadline(t time.Time) error {
	if b.IsClosed() {
		return ErrClosed
	}
	b.ReadDeadline.Set(t)
	return nil
}

// SetWriteDeadline sets the write deadline (net.Conn semantics).
func (b *Base) SetWriteDeadline(t time.Time) error {
	if b.IsClosed() {
		return ErrClosed
	}
	b.WriteDeadline.Set(t)
	return nil
}

// SetDeadline sets both deadlines.
func (b *Base) SetDeadline(t time.Time) error {
	if b.IsClosed() {
		return ErrClosed
	}
	b.ReadDeadline.Set(t)
	b.WriteDeadline.Set(t)
	return nil
}
