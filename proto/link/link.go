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
type RxNotifier interface {
	SetRxNotify(q int, wake func())
}
