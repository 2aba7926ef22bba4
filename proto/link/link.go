// Package link defines what the stack needs from a network device: batched
// receive and transmit of Ethernet frames on numbered queues, each receive
// queue with the mempool its buffers come from. *ixgbe.NIC satisfies Link;
// memlink provides an in-memory pair for tests, and pcaplink a wrapper that
// records every frame to a pcap file.
package link

import (
	"net"

	"github.com/verinic/verinic/dma"
)

// Link is a network device as the stack sees it.
//
// Ownership: RxBatch hands received buffers to the caller, who frees them
// (or transmits them); TxBatch takes ownership of the packets it accepts
// (the first n) and leaves the rest with the caller. Every call for queue q,
// and every use of RxPool(q), comes from one goroutine at a time: the poll
// loop of queue q. That loop allocates its transmit buffers from RxPool(q)
// as well, so a mempool is only ever touched by its own loop.
type Link interface {
	MAC() net.HardwareAddr
	NumRxQueues() int
	NumTxQueues() int
	RxPool(q int) *dma.Mempool
	RxBatch(q int, pkts []dma.Packet) (int, error)
	TxBatch(q int, pkts []dma.Packet) (int, error)
}

// RxNotifier is implemented by links that can tell the stack when frames
// arrive for a queue (an interrupt, or the in-memory wire's enqueue), so an
// idle poll loop wakes at once instead of at its next idle poll. wake must
// be cheap and non-blocking; the link may call it from any goroutine.
// SetRxNotify reports whether the link will call wake for every frame that
// arrives on q while the loop is idle (a NIC in polling mode reports false):
// only then may an idle loop block until its next timer.
type RxNotifier interface {
	SetRxNotify(q int, wake func()) bool
}

// DropCounter is implemented by links over a device that drops received
// frames before any poll loop sees them (*ixgbe.NIC: the 82599's statistics
// registers and the driver's own counts). The stack adds these counts to its
// counters (dev_rx_*), so that a drop anywhere on the receive path shows.
// The method uses only basic types, so that a driver satisfies it without
// importing this package.
type DropCounter interface {
	// RxDrops returns totals since the device started: frames missed for
	// lack of receive packet-buffer space (82599 MPC); frames dropped
	// because their queue's ring had no free descriptor (QPRDC); frames of
	// legal size with a bad FCS (CRCERRS); frames shorter than 64 bytes
	// (RUC, RFC); frames longer than the largest allowed (ROC, RJC); good
	// frames the destination-address filters refused; and frames the
	// driver dropped (MAC errors, frames spanning descriptors).
	RxDrops() (missed, ringFull, crcErrors, undersize, oversize, filtered, driver uint64)
}

// Offloader is implemented by links over a device with offloads (*ixgbe.NIC
// on an 82599, real or simulated). Offloads says which it performs: the
// receive ones fill dma.Packet.Meta for every frame RxBatch returns, the
// transmit ones are honoured when TxBatch finds them requested in Meta. A
// link without it offers none: the stack checks and computes every checksum
// itself.
type Offloader interface {
	Offloads() dma.Offloads
}

// Allocator is implemented by links over a device that reaches DMA memory
// the stack may allocate for transmit buffers of its own (*ixgbe.NIC): the
// large buffers of TCP segmentation offload, which the receive pool's
// buffers are too small for.
type Allocator interface {
	Allocator() *dma.Allocator
}
