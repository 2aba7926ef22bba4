//go:build linux

package hostlink

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// TAP is a Link over a Linux TAP device: the kernel sees an Ethernet
// interface, and what it transmits there this link delivers to the
// receiver, and the other way round.
type TAP struct {
	name   string
	file   *os.File
	r      Receiver
	c      counters
	closed atomic.Bool
	once   sync.Once
	done   chan struct{}
}

// OpenTAP creates (or attaches to an existing, persistent) TAP device called
// name, in the calling thread's network namespace, without packet
// information headers (IFF_TAP|IFF_NO_PI), and starts delivering the frames
// the kernel sends on it to r. Bring the interface up and address it with
// ip(8) or rtnetlink as for any interface. Needs CAP_NET_ADMIN.
func OpenTAP(name string, r Receiver) (*TAP, error) {
	if r == nil {
		return nil, errors.New("hostlink: OpenTAP: nil receiver")
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, tunOpenError(err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostlink: TAP name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("hostlink: create TAP %q: %w (needs CAP_NET_ADMIN: run as root)", name, err)
		}
		return nil, fmt.Errorf("hostlink: create TAP %q: %w", name, err)
	}
	// A non-blocking fd handed to os.NewFile is driven by the runtime's
	// poller, so Close wakes a blocked Read and the reader exits.
	t := &TAP{name: ifr.Name(), file: os.NewFile(uintptr(fd), "tap:"+ifr.Name()), r: r, done: make(chan struct{})}
	go t.readLoop()
	return t, nil
}

// Name returns the interface name the kernel gave the device.
func (t *TAP) Name() string { return t.name }

func (t *TAP) readLoop() {
	defer close(t.done)
	buf := make([]byte, maxReadSize+fcsLen)
	var bo backoff
	for {
		n, err := t.file.Read(buf[:maxReadSize])
		if err != nil {
			if t.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			// Count it and keep reading, as the device stays open; pace
			// the retries in case the error persists.
			t.c.rxErrors.Add(1)
			bo.fail()
			continue
		}
		bo.ok()
		if n == 0 {
			continue
		}
		deliver(&t.c, t.r, buf, n)
	}
}

// Transmit checks and strips the frame's FCS and writes it to the kernel. A
// frame with a bad FCS is dropped (a real receiver's MAC would drop it too)
// and counted. The slice is not kept.
func (t *TAP) Transmit(frame []byte) {
	if t.closed.Load() {
		t.c.txErrors.Add(1)
		return
	}
	f, ok := strip(&t.c, frame)
	if !ok {
		return
	}
	if _, err := t.file.Write(f); err != nil {
		t.c.txErrors.Add(1)
		return
	}
	t.c.txFrames.Add(1)
	t.c.txBytes.Add(uint64(len(f)))
}

// Up reports whether the link is open. (A TAP device has carrier while a
// process holds it open.)
func (t *TAP) Up() bool { return !t.closed.Load() }

// Stats returns the link's counters.
func (t *TAP) Stats() Stats { return t.c.snapshot() }

// Close stops the reader, waits for it to exit and closes the device (a
// non-persistent TAP device disappears with it).
func (t *TAP) Close() error {
	var err error
	t.once.Do(func() {
		t.closed.Store(true)
		err = t.file.Close()
		<-t.done
	})
	return err
}

// tunOpenError explains a failure to open /dev/net/tun by its cause: no
// permission (the usual one), or no device (the tun module).
func tunOpenError(err error) error {
	switch {
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return fmt.Errorf("hostlink: open /dev/net/tun: %w (a TAP device needs root, or CAP_NET_ADMIN and access to /dev/net/tun)", err)
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO):
		return fmt.Errorf("hostlink: open /dev/net/tun: %w (load the tun module: modprobe tun)", err)
	}
	return fmt.Errorf("hostlink: open /dev/net/tun: %w", err)
}
