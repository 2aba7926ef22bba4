package main

import (
	"fmt"
	"time"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/vfio"
)

// rxITR is the interrupt throttling interval of interrupt mode (EITR,
// datasheet 7.3.2.1): at most one message per 10 us and queue, ixy's value.
const rxITR = 10 * time.Microsecond

// vectorSet is a device's interrupt vectors delivered to eventfds
// (*vfio.Interrupts).
type vectorSet interface {
	ixgbe.Interrupts
	Count() int
	Disable() error
}

// msixDevice is a device whose MSI-X vectors can be routed to eventfds
// (*vfio.Device, through msixOf).
type msixDevice interface {
	EnableMSIX(vectors int) (vectorSet, error)
}

// vfioMSIX enables a VFIO device's MSI-X vectors, and only MSI-X: the
// driver programs the 82599 in MSI-X mode (GPIE.MSIX_MODE), so MSI or INTx
// would never fire.
type vfioMSIX struct{ d *vfio.Device }

func (v vfioMSIX) EnableMSIX(vectors int) (vectorSet, error) {
	in, err := v.d.EnableInterrupts(vectors, vfio.IRQIndexMSIX)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// rxMode is how a stack's receive queues wait for frames.
type rxMode struct {
	src     ixgbe.Interrupts // nil: the queues poll
	release func() error     // gives the vectors back (after the driver closed); may be nil
	what    string           // for the user
	warning string           // set when interrupt mode was wanted and is not possible
}

// chooseRxMode picks the receive mode of a driver with queues RX queues on
// dev: busy polling when asked for; otherwise interrupt mode over the
// device's MSI-X vectors, one per queue (a simulated 82599's, or a real
// one's through VFIO), and polling with a warning that says why when the
// device cannot give them (no MSI-X capability, too few vectors, the
// kernel refused).
func chooseRxMode(dev ixgbe.Device, queues int, busyPoll bool) rxMode {
	if busyPoll {
		return rxMode{what: "busy polling (--busy-poll)"}
	}
	if sim, ok := dev.(interface{ Interrupts() *ixgbesim.Interrupts }); ok {
		return rxMode{src: sim.Interrupts(), what: "interrupt mode (simulated MSI-X)"}
	}
	var md msixDevice
	switch d := dev.(type) {
	case msixDevice:
		md = d
	case *vfio.Device:
		md = vfioMSIX{d}
	default:
		return rxMode{what: "polling (the device delivers no interrupts)"}
	}
	fallback := func(why string) rxMode {
		return rxMode{
			what:    "polling",
			warning: fmt.Sprintf("%s: %s; the receive queues poll instead of waiting for interrupts (more CPU when idle)", dev.Name(), why),
		}
	}
	in, err := md.EnableMSIX(queues)
	if err != nil {
		return fallback(fmt.Sprintf("no MSI-X interrupts (%v)", err))
	}
	if in.Count() < queues {
		n := in.Count()
		if derr := in.Disable(); derr != nil {
			return fallback(fmt.Sprintf("only %d MSI-X vectors for %d receive queues, and giving them back failed (%v)", n, queues, derr))
		}
		return fallback(fmt.Sprintf("only %d MSI-X vectors for %d receive queues (one each is needed)", n, queues))
	}
	return rxMode{src: in, release: in.Disable, what: fmt.Sprintf("interrupt mode (MSI-X through VFIO, %d vectors)", in.Count())}
}
