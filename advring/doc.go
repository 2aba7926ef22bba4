// Package advring is the ring engine shared by the Intel NIC families that
// use advanced descriptors: the 82599 (package ixgbe) and the 82576
// (package igb). Both have the same 16-byte advanced RX and TX descriptors
// (read and write-back formats, DD/EOP, DTYP/DCMD, PAYLEN), head and tail
// registers, context descriptors for checksum offload and TSO, and the same
// ownership protocol (82599 datasheet 7.1 and 7.2; 82576 datasheet 7.1 and
// 7.2). The engine owns everything between the tail register and the
// packet: the rings in DMA memory and their index arithmetic, posting and
// reclaiming buffers from dma.Mempools, batching (one tail write per call,
// RS every RSThresh descriptors), offload context descriptors, the length
// checks, trace recording of every ring event, the Stop/Close gates, and
// the family-independent half of interrupt mode (NAPI).
//
// A family driver keeps its register map, reset and init sequence, link,
// EEPROM, RSS, interrupt registers and statistics, and describes itself to
// the engine as data: a Family with the queue registers as functions of
// the queue index (Regs) and the RX write-back bits whose positions differ
// (Layout). The engine has no branch on the family.
//
// # What a family driver calls, in order
//
//  1. Config: the Family, the Device (register access), the DMA allocator,
//     the trace recorder, and Gone (a register read that says whether the
//     device has been removed). WithBugs (ixgbebugs builds only) adds
//     deliberate protocol errors for the verification tests.
//  2. Per RX queue: create its dma.Mempool (the family owns it), then
//     NewRxQueue; write the family's per-queue receive set-up (82599 and
//     82576: SRRCTL, advanced one-buffer descriptors, buffer size from
//     the pool's BufSize); Program (ring base, length, head and tail 0).
//     Append it to Port.Rx.
//  3. Per TX queue: NewTxQueue with the MAC's maximum frame size; Program;
//     the family's thresholds (TXDCTL PTHRESH/HTHRESH, WTHRESH 0: the
//     engine relies on DD being written back as soon as an RS descriptor
//     is done). Append it to Port.Tx.
//  4. The family's global enables (82599: RXCTRL.RXEN, DMATXCTL.TE;
//     82576: RCTL.EN, TCTL.EN).
//  5. Per RX queue: Fill (a buffer in every descriptor), the family's queue
//     enable with its poll for the enable bit (RXDCTL.ENABLE), then Start
//     (tail = N-1: one descriptor stays with the driver). Per TX queue: the
//     family's enable (TXDCTL.ENABLE) and its poll.
//  6. Port.Open. From now on RxBatch and TxBatch run, one goroutine per
//     queue; the family's NIC methods forward to them.
//  7. Interrupt mode (optional): the family programs its vectors, then
//     NewNAPI and Port.SetNAPI; per queue, NAPI.Notify with the family's
//     "unmask the queue's vector and wait for it" function.
//  8. Stop: State.Set(Stopped); Port.Quiesce (waits for batches in
//     flight; on ErrQueueInUse touch nothing); Port.Drain (TX rings
//     written back); the family's queue disables and their polls;
//     Port.ReclaimAll (every buffer back to its pool).
//  9. Close: after Stop, State.Set(Closed), NAPI.Close, Port.FreeRings,
//     and the family releases its RX pools.
//
// A surprise removal: after GoneCheckInterval calls without progress a
// queue calls Config.Gone; the family's Gone sets State's Gone bit, and
// every later call returns ErrDeviceGone.
//
// # Example
//
// A family "acme" whose queue registers sit at 0xC000 and 0xE000 (the
// 82576's layout) with the 82576's error bits:
//
//	var acme = &advring.Family{
//		Name: "acme",
//		Regs: advring.Regs{
//			RDBAL: func(n int) uint32 { return 0xC000 + 0x40*uint32(n) },
//			RDBAH: func(n int) uint32 { return 0xC004 + 0x40*uint32(n) },
//			// ... RDLEN +8, RDH +0x10, RDT +0x18; TDBAL 0xE000 ...
//		},
//		Layout: advring.Layout{RXE: 31, IPE: 30, L4E: 29, IPCS: 6, L4CS: 5, VP: 3},
//	}
//
//	func (n *NIC) init() error {
//		c := &advring.Config{Family: acme, Dev: n.dev, Alloc: n.dev.DMA(), Gone: n.checkGone}
//		pool, err := dma.NewMempool(n.dev.DMA(), dma.MempoolConfig{Buffers: 1024})
//		if err != nil {
//			return err
//		}
//		rq, err := advring.NewRxQueue(c, advring.RxConfig{Queue: 0, Size: 512, Pool: pool})
//		if err != nil {
//			return err
//		}
//		n.writeSRRCTL(0, pool.BufSize()) // family
//		rq.Program(acme)
//		n.port.Rx = append(n.port.Rx, rq)
//		tq, err := advring.NewTxQueue(c, advring.TxConfig{Queue: 0, Size: 512, MaxFrame: 1514})
//		if err != nil {
//			return err
//		}
//		tq.Program(acme)
//		n.writeTXDCTLThresholds(0) // family
//		n.port.Tx = append(n.port.Tx, tq)
//		n.enableUnits() // family: RCTL.EN, TCTL.EN
//		if err := rq.Fill(); err != nil {
//			return err
//		}
//		if err := n.enableRxQueue(0); err != nil { // family: RXDCTL.ENABLE, poll
//			return err
//		}
//		rq.Start()
//		if err := n.enableTxQueue(0); err != nil { // family: TXDCTL.ENABLE, poll
//			return err
//		}
//		n.port.Open()
//		return nil
//	}
//
//	func (n *NIC) RxBatch(q int, pkts []dma.Packet) (int, error) { return n.port.RxBatch(q, pkts) }
//	func (n *NIC) TxBatch(q int, pkts []dma.Packet) (int, error) { return n.port.TxBatch(q, pkts) }
//
// ixgbe/init.go and ixgbe/nic.go are the complete 82599 version (New,
// initRx, initTx, startRx, startTx, stopLocked, Close).
//
// # Ordering
//
// Descriptors are written with plain stores while the driver owns them and
// published by the tail write (ring.go, setDesc, argues it per
// architecture; arch.go limits the build to amd64 and arm64); write-backs
// are read after an atomic load of DD. go test -race over a family driver
// running against a simulator checks this discipline.
package advring
