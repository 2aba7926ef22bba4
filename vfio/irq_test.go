package vfio

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostInterrupts are MSI-X Interrupts over real eventfds and no device: the
// test plays the kernel and writes the eventfds itself.
func hostInterrupts(t *testing.T, n int) *Interrupts {
	t.Helper()
	e, err := newEventfds(n)
	if err != nil {
		t.Fatal(err)
	}
	in := &Interrupts{index: IRQIndexMSIX, eventfds: e}
	t.Cleanup(func() { in.shutdown(nil) })
	return in
}

// fire does what the kernel does when a vector's message arrives: it adds
// one to the vector's eventfd counter.
func fire(t *testing.T, in *Interrupts, vector int) {
	t.Helper()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 1)
	if _, err := unix.Write(in.FD(vector), b[:]); err != nil {
		t.Fatal(err)
	}
}

// Wait's contract is the one ixgbe.Interrupts states: it returns how many
// interrupts arrived since the last Wait, times out with ErrTimeout (which
// says it is a timeout), polls with 0 and waits for ever with a negative
// timeout.
func TestInterruptsWait(t *testing.T) {
	in := hostInterrupts(t, 2)
	if in.Count() != 2 {
		t.Fatalf("Count() = %d, want 2", in.Count())
	}
	if n, err := in.Wait(0, 0); !errors.Is(err, ErrTimeout) || n != 0 {
		t.Errorf("poll with nothing pending: %d, %v; want ErrTimeout", n, err)
	}
	var te interface{ Timeout() bool }
	if !errors.As(ErrTimeout, &te) || !te.Timeout() {
		t.Error("ErrTimeout does not report Timeout() = true")
	}
	start := time.Now()
	if _, err := in.Wait(1, 30*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait with nothing pending: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("Wait returned after %v, before its 30ms timeout", d)
	}
	fire(t, in, 1)
	fire(t, in, 1)
	if n, err := in.Wait(0, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("vector 0 has a count %d (%v) after vector 1 fired", n, err)
	}
	if n, err := in.Wait(1, 0); err != nil || n != 2 {
		t.Errorf("poll after two interrupts: %d, %v; want 2", n, err)
	}
	if n, err := in.Wait(1, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("the count was not reset by Wait: %d, %v", n, err)
	}
	// A negative timeout blocks until the vector fires.
	got := make(chan error, 1)
	go func() {
		n, err := in.Wait(0, -1)
		if err == nil && n != 1 {
			err = errors.New("wrong count")
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Wait(-1) returned before any interrupt: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	fire(t, in, 0)
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("Wait(-1) after an interrupt: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait(-1) did not return within 10s of the interrupt")
	}
	if _, err := in.Wait(2, 0); err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("vector 2 of 2: %v, want an out-of-range error", err)
	}
}

// Disabling wakes a Wait that blocks for ever (closing an eventfd does not
// wake a poll on it) and every later Wait fails; it runs the release once,
// after the Waits are out.
func TestInterruptsShutdownWakesWait(t *testing.T) {
	in := hostInterrupts(t, 1)
	got := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := in.Wait(0, -1)
			got <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	released := 0
	release := func() error { released++; return nil }
	done := make(chan error, 1)
	go func() { done <- in.shutdown(release) }()
	for i := 0; i < 2; i++ {
		select {
		case err := <-got:
			if !errors.Is(err, ErrInterruptsDisabled) {
				t.Errorf("blocked Wait after disable: %v, want ErrInterruptsDisabled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a blocked Wait(-1) was not woken by the disable within 10s")
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("disable did not finish within 10s")
	}
	if err := in.shutdown(release); err != nil || released != 1 {
		t.Errorf("second disable: %v, release ran %d times; want nil and once", err, released)
	}
	if _, err := in.Wait(0, time.Second); !errors.Is(err, ErrInterruptsDisabled) {
		t.Errorf("Wait after disable: %v, want ErrInterruptsDisabled", err)
	}
	if in.Count() != 0 {
		t.Errorf("%d eventfds left open", in.Count())
	}
}
