package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IRQInfo describes one interrupt index (VFIO_DEVICE_GET_IRQ_INFO).
type IRQInfo struct {
	Index int
	Flags uint32 // IRQInfo*
	Count int    // vectors
}

// IRQInfo asks about an interrupt index (IRQIndexINTx, IRQIndexMSI,
// IRQIndexMSIX).
func (d *Device) IRQInfo(index int) (IRQInfo, error) {
	ii := irqInfo{Argsz: uint32(unsafe.Sizeof(irqInfo{})), Index: uint32(index)}
	if _, err := ioctlPtr(d.fd, ioctlDeviceGetIRQInfo, unsafe.Pointer(&ii)); err != nil {
		return IRQInfo{}, fmt.Errorf("VFIO_DEVICE_GET_IRQ_INFO index %d: %w", index, err)
	}
	return IRQInfo{Index: index, Flags: ii.Flags, Count: int(ii.Count)}, nil
}

// IRQIndexName names an interrupt index.
func IRQIndexName(index int) string {
	switch index {
	case IRQIndexINTx:
		return "INTx"
	case IRQIndexMSI:
		return "MSI"
	case IRQIndexMSIX:
		return "MSI-X"
	}
	return fmt.Sprintf("IRQ index %d", index)
}

// Interrupts are a device's interrupt vectors delivered to eventfds.
type Interrupts struct {
	d     *Device
	index int
	*eventfds
}

// Index returns the interrupt index in use (IRQIndexMSIX, IRQIndexMSI or
// IRQIndexINTx).
func (in *Interrupts) Index() int { return in.index }

// ErrTimeout reports that no interrupt arrived in time. Its Timeout method
// reports true (as net.Error's does), so that a caller that knows only the
// ixgbe.Interrupts interface can tell a timeout from a failure.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string { return "vfio: no interrupt before the timeout" }
func (timeoutError) Timeout() bool { return true }

// ErrInterruptsDisabled is returned by Wait once the interrupts are
// disabled (Disable, or the device closed), also to a Wait that was blocked.
var ErrInterruptsDisabled = errors.New("vfio: interrupts are disabled")

// Wait blocks until the vector fires or the timeout passes (a negative
// timeout waits for ever, 0 only polls), and returns how many interrupts
// arrived since the last Wait (the eventfd counter); a timeout returns
// ErrTimeout. With INTx, which the kernel masks when it fires, it unmasks
// the line again. Waits on different vectors may run concurrently; Disable
// wakes every blocked Wait with ErrInterruptsDisabled.
func (in *Interrupts) Wait(vector int, timeout time.Duration) (uint64, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	n, err := in.waitLocked(vector, timeout)
	if err != nil || in.index != IRQIndexINTx {
		return n, err
	}
	if err := in.d.setIRQs(irqSetDataNone|irqSetActionUnmask, in.index, 0, 1, nil); err != nil {
		return 0, fmt.Errorf("vfio: unmask INTx: %w", err)
	}
	return n, nil
}

// eventfds are the eventfds of a set of vectors and a stop eventfd that
// Wait polls as well, so that shutting down wakes a Wait blocked for ever
// (closing an fd does not wake a poll on it).
type eventfds struct {
	mu      sync.RWMutex // Wait holds it shared; shutdown exclusively, to close the fds
	fds     []int
	stop    int // written once by shutdown; never read, so it stays readable
	closing atomic.Bool
}

// newEventfds makes n non-blocking eventfds and the stop eventfd.
func newEventfds(n int) (*eventfds, error) {
	e := &eventfds{stop: -1}
	for i := 0; i <= n; i++ {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			e.closeFDs()
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		if i == n {
			e.stop = fd
		} else {
			e.fds = append(e.fds, fd)
		}
	}
	return e, nil
}

// Count returns the number of vectors.
func (e *eventfds) Count() int { return len(e.fds) }

// FD returns the eventfd of a vector (for an epoll set).
func (e *eventfds) FD(vector int) int { return e.fds[vector] }

// waitLocked is Wait without the INTx unmask; e.mu is held shared.
func (e *eventfds) waitLocked(vector int, timeout time.Duration) (uint64, error) {
	if e.closing.Load() {
		return 0, ErrInterruptsDisabled
	}
	if vector < 0 || vector >= len(e.fds) {
		return 0, fmt.Errorf("vfio: interrupt vector %d out of range (0..%d)", vector, len(e.fds)-1)
	}
	fd := e.fds[vector]
	deadline := time.Now().Add(timeout)
	for {
		ms := -1 // poll(2): no limit
		if timeout >= 0 {
			// Rounded up, so that a Wait never returns before its timeout.
			ms = int((time.Until(deadline) + time.Millisecond - 1) / time.Millisecond)
			if ms < 0 {
				ms = 0
			}
		}
		pfd := [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(e.stop), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("vfio: poll interrupt eventfd: %w", err)
		}
		if pfd[1].Revents != 0 {
			return 0, ErrInterruptsDisabled
		}
		if n == 0 {
			if timeout >= 0 && !time.Now().Before(deadline) {
				return 0, ErrTimeout
			}
			continue
		}
		var b [8]byte
		if _, err := unix.Read(fd, b[:]); err != nil {
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			return 0, fmt.Errorf("vfio: read interrupt eventfd: %w", err)
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
}

// shutdown wakes every Wait, waits for them to return, runs release (which
// detaches the eventfds from the device) and closes the eventfds. Only the
// first call does anything.
func (e *eventfds) shutdown(release func() error) error {
	if e.closing.Swap(true) {
		return nil
	}
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	unix.Write(e.stop, one[:])
	e.mu.Lock()
	defer e.mu.Unlock()
	var err error
	if release != nil {
		err = release()
	}
	e.closeFDs()
	return err
}

func (e *eventfds) closeFDs() {
	for _, fd := range e.fds {
		unix.Close(fd)
	}
	if e.stop >= 0 {
		unix.Close(e.stop)
	}
	e.fds, e.stop = nil, -1
}

func (d *Device) setIRQs(flags uint32, index, start, count int, data []byte) error {
	hdr := int(unsafe.Sizeof(irqSet{}))
	buf := make([]byte, hdr+len(data))
	s := (*irqSet)(unsafe.Pointer(&buf[0]))
	*s = irqSet{Argsz: uint32(len(buf)), Flags: flags, Index: uint32(index), Start: uint32(start), Count: uint32(count)}
	copy(buf[hdr:], data)
	if _, err := ioctlPtr(d.fd, ioctlDeviceSetIRQs, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("VFIO_DEVICE_SET_IRQS %s flags %#x: %w", IRQIndexName(index), flags, err)
	}
	return nil
}

// EnableInterrupts routes up to vectors interrupt vectors to eventfds,
// trying MSI-X, then MSI, then INTx, and taking the first index that exists
// and supports eventfds (an index without VFIO_IRQ_INFO_EVENTFD, or with no
// vectors, is skipped). Fewer vectors than asked are enabled when the index
// has fewer. Pass a list of indexes to try others, or in another order.
func (d *Device) EnableInterrupts(vectors int, indexes ...int) (*Interrupts, error) {
	if vectors < 1 {
		return nil, fmt.Errorf("vfio: enable %d interrupt vectors: need at least one", vectors)
	}
	if len(indexes) == 0 {
		indexes = []int{IRQIndexMSIX, IRQIndexMSI, IRQIndexINTx}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("vfio: device is closed")
	}
	if d.irqs != nil {
		return nil, fmt.Errorf("vfio: %s: interrupts are already enabled (%s); disable them first", d.addr, IRQIndexName(d.irqs.index))
	}
	in, err := chooseIRQs(indexes, vectors, int(d.info.NumIRQs), d.IRQInfo, d.enable)
	if err != nil {
		return nil, fmt.Errorf("vfio: %s: %w", d.addr, err)
	}
	d.irqs = in
	return in, nil
}

// chooseIRQs takes the first index of indexes that the device has, that has
// vectors and that supports eventfds, and enables up to vectors of it; an
// index that fails to enable is skipped too. The error lists why each index
// was passed over.
func chooseIRQs(indexes []int, vectors, numIRQs int, info func(int) (IRQInfo, error), enable func(index, n int) (*Interrupts, error)) (*Interrupts, error) {
	var skipped []string
	for _, idx := range indexes {
		if idx < 0 || idx >= numIRQs {
			skipped = append(skipped, fmt.Sprintf("%s: not an index of this device", IRQIndexName(idx)))
			continue
		}
		ii, err := info(idx)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", IRQIndexName(idx), err))
			continue
		}
		if ii.Count == 0 {
			skipped = append(skipped, IRQIndexName(idx)+": no vectors")
			continue
		}
		if ii.Flags&IRQInfoEventfd == 0 {
			skipped = append(skipped, IRQIndexName(idx)+": no eventfd support")
			continue
		}
		in, err := enable(idx, min(vectors, ii.Count))
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", IRQIndexName(idx), err))
			continue
		}
		return in, nil
	}
	return nil, fmt.Errorf("no usable interrupt index (%s)", strings.Join(skipped, "; "))
}

func (d *Device) enable(index, n int) (*Interrupts, error) {
	e, err := newEventfds(n)
	if err != nil {
		return nil, err
	}
	data := make([]byte, 4*n)
	for i, fd := range e.fds {
		binary.LittleEndian.PutUint32(data[4*i:], uint32(int32(fd)))
	}
	if err := d.setIRQs(irqSetDataEventfd|irqSetActionTrig, index, 0, n, data); err != nil {
		e.closeFDs()
		return nil, err
	}
	return &Interrupts{d: d, index: index, eventfds: e}, nil
}

// Disable turns the interrupts off and closes their eventfds.
func (in *Interrupts) Disable() error {
	d := in.d
	d.mu.Lock()
	if d.irqs == in {
		d.irqs = nil
	}
	d.mu.Unlock()
	return in.close()
}

// close detaches the eventfds from the device (VFIO_DEVICE_SET_IRQS with
// no data and count 0) after waking and waiting out every Wait, then closes
// them.
func (in *Interrupts) close() error {
	return in.shutdown(func() error {
		return in.d.setIRQs(irqSetDataNone|irqSetActionTrig, in.index, 0, 0, nil)
	})
}
