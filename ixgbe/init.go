package ixgbe

import (
	"fmt"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

// Register addresses: the driver uses the canonical (82599) address of
// every register, never the 82598-compatible aliases (SRRCTL at 0x02100,
// DCA_RXCTRL at 0x02200, RAL/RAH at 0x05400), which ixy uses. The datasheet
// backs each alias pair with one register, so either works on hardware; one
// spelling keeps register-access logs comparable.

// init runs the initialization sequence of datasheet 4.6.3-4.6.8, in the
// order ixy's reset_and_init uses (ixy src/driver/ixgbe.c), with a timeout
// on every poll.
func (n *NIC) init() error {
	if n.dev.Read32(regs.STATUS) == allOnes {
		n.setState(stateGone)
		return fmt.Errorf("ixgbe: %s: STATUS reads 0xFFFFFFFF before reset: %w", n.name, ErrDeviceGone)
	}
	// 4.6.3.1: mask all interrupts (the driver polls).
	n.disableInterrupts()

	// 4.6.3.2: master disable (5.2.5.3.2), then global reset.
	n.masterDisable()
	n.dev.Write32(regs.CTRL, n.dev.Read32(regs.CTRL)|regs.CTRL_RST_MASK)
	if err := n.waitClear(regs.CTRL, regs.CTRL_RST_MASK, "CTRL.RST|LNK_RST (bits 26, 3)", "4.6.3.2"); err != nil {
		return err
	}
	// "Following a global reset the software driver should wait at least
	// 10 msec to enable smooth initialization flow" (4.6.3.2).
	n.clock.Sleep(10 * time.Millisecond)
	// 4.6.3.1 again: reset re-enables nothing, but the datasheet asks for
	// interrupts to be disabled after the reset as well.
	n.disableInterrupts()

	// 4.6.3: wait for the EEPROM auto-read and the DMA initialization.
	if err := n.waitSet(regs.EEC, regs.EEC_ARD, "EEC.ARD (bit 9)", "4.6.3"); err != nil {
		return err
	}
	if err := n.waitSet(regs.RDRXCTL, regs.RDRXCTL_DMAIDONE, "RDRXCTL.DMAIDONE (bit 3)", "4.6.3"); err != nil {
		return err
	}
	// A device that says what it is (PCI IDs, support.go) is probed as
	// Linux's ixgbe probes it: EEPROM checksum, MAC address, PBA and
	// version (eeprom.go), and the SFP+ module of an SFP+ port (sfp.go).
	if n.info.DeviceID != 0 {
		if err := n.readEEPROM(); err != nil {
			return err
		}
		n.info.RARMatchesEEPROM = n.info.PermanentMAC.String() == n.MAC().String()
		if n.info.Media == MediaSFP {
			// Informational: a module that cannot be read does not stop
			// the port (the link tells whether it works).
			if err := n.identifySFP(); err != nil {
				n.info.SFPError = err.Error()
			}
		}
	}

	// 4.6.4: link setup: 10G serial link mode, XAUI PMA/PMD, restart
	// auto-negotiation. The link comes up asynchronously.
	autoc := n.dev.Read32(regs.AUTOC)
	autoc = autoc&^regs.AUTOC_LMS_MASK | regs.AUTOC_LMS_10G_SERIAL
	autoc = autoc&^regs.AUTOC_10G_PMA_PMD_MASK | regs.AUTOC_10G_XAUI
	n.dev.Write32(regs.AUTOC, autoc)
	n.dev.Write32(regs.AUTOC, autoc|regs.AUTOC_AN_RESTART)

	// 4.6.5: statistics are cleared by reading them (clear on read).
	n.readHardwareStats()

	// 4.6.6 (interrupts) is skipped: the driver polls.

	if err := n.initRx(); err != nil {
		return err
	}
	n.maxFrame = n.maxFrameSize()
	if err := n.initTx(); err != nil {
		return err
	}
	n.setupFlowControl()
	for _, q := range n.port.Rx {
		if err := n.startRx(q); err != nil {
			return err
		}
	}
	for i := range n.port.Tx {
		if err := n.startTx(i); err != nil {
			return err
		}
	}
	n.port.Open()
	n.setPromiscuousLocked(n.cfg.Promiscuous)
	return nil
}

// disableInterrupts masks every interrupt cause (datasheet 4.6.3.1,
// 8.2.3.5.5 EIMC, 8.2.3.5.8-9 EIMC_EX) and clears the pending ones: EIMC
// gets Intel's IXGBE_IRQ_CLEAR_MASK (all ones), and so do both EIMC_EX
// registers, which hold the mask bits of the 64 MSI-X queue vectors
// (EIMC's bits 15:0 reach only vectors 0-15). Linux's ixgbe_irq_disable does
// the same for the 82599.
func (n *NIC) disableInterrupts() {
	n.dev.Write32(regs.EIMC, regs.IRQ_CLEAR_MASK)
	n.dev.Write32(regs.EIMC_EX(0), regs.IRQ_CLEAR_MASK)
	n.dev.Write32(regs.EIMC_EX(1), regs.IRQ_CLEAR_MASK)
	n.dev.Read32(regs.EICR) // clear on read
}

// masterDisable stops the device's DMA before the reset (datasheet
// 5.2.5.3.2): set CTRL.PCIE_MDE and wait for STATUS.GIO_MASTER_E to clear. As
// in the datasheet's procedure, a device that does not clear it is reset
// anyway, so this wait is short and not an error.
func (n *NIC) masterDisable() {
	n.dev.Write32(regs.CTRL, n.dev.Read32(regs.CTRL)|regs.CTRL_PCIE_MDE)
	start := n.clock.Now()
	for n.dev.Read32(regs.STATUS)&regs.STATUS_GIO_MASTER_E != 0 {
		if n.clock.Now().Sub(start) >= time.Millisecond {
			return
		}
		n.clock.Sleep(100 * time.Microsecond)
	}
}

// RDRXCTL fields the regs package does not name (datasheet 8.2.3.8.8).
const (
	rdrxctlRSCFRSTSIZE = 0x1F << 17 // RSC first packet size, bits 21:17
	rdrxctlRSCACKC     = 1 << 25    // RSC coalescing on ACK change
	rdrxctlFCOEWRFIX   = 1 << 26    // FCoE write fix
)

// Packet buffer sizes of the 82599 in KB (datasheet 4.6.11.3.1, the reset
// values of RXPBSIZE[0] and TXPBSIZE[0]).
const (
	rxPacketBufferKB = 512
	txPacketBufferKB = 160
)

// initRx is datasheet 4.6.7 without starting the queues.
func (n *NIC) initRx() error {
	// Receive off while the unit is configured.
	n.clearBits(regs.RXCTRL, regs.RXCTRL_RXEN)
	// Without DCB or virtualization all of the receive packet buffer goes
	// to packet buffer 0 (4.6.11.3.1). ixy writes 128 KB here, leaving
	// three quarters of the 512 KB unused.
	n.dev.Write32(regs.RXPBSIZE(0), rxPacketBufferKB<<10)
	for i := 1; i < 8; i++ {
		n.dev.Write32(regs.RXPBSIZE(i), 0)
	}
	// Strip the CRC in the MAC and in DMA (both must agree, 8.2.3.8.8),
	// accept broadcasts.
	n.setBits(regs.HLREG0, regs.HLREG0_RXCRCSTRP)
	// RDRXCTL (4.6.7, 8.2.3.8.8): strip the CRC in DMA too; RSCFRSTSIZE
	// "should be set to 0x0 as opposed to its hardware default"; RSCACKC
	// and FCOE_WRFIX: "software should set this bit to 1b".
	rdrxctl := n.dev.Read32(regs.RDRXCTL)
	rdrxctl &^= rdrxctlRSCFRSTSIZE
	rdrxctl |= regs.RDRXCTL_CRCSTRIP | rdrxctlRSCACKC | rdrxctlFCOEWRFIX
	n.dev.Write32(regs.RDRXCTL, rdrxctl)
	n.setBits(regs.FCTRL, regs.FCTRL_BAM)

	rc := n.ringConfig()
	for i := 0; i < n.cfg.RxQueues; i++ {
		q, err := n.newRxQueue(rc, i)
		if err != nil {
			return err
		}
		n.port.Rx = append(n.port.Rx, q)
		// Advanced one-buffer descriptors, buffer size from the pool,
		// drop when no descriptor is free (8.2.3.8.7) -- unless flow
		// control is on: then a frame waits in the packet buffer for a
		// descriptor, so that the buffer fills and the MAC sends XOFF
		// (3.7.7) instead of the queue dropping it. (Linux's ixgbe clears
		// DROP_EN with flow control on for the same reason.)
		// BSIZEPACKET counts 1 KB units, 1 to 16 KB (8.2.3.8.7); a larger
		// data room is simply not used beyond 16 KB.
		bsize := uint32(min(q.Pool().BufSize()/1024, 16))
		srrctl := n.dev.Read32(regs.SRRCTL(i))
		srrctl &^= regs.SRRCTL_DESCTYPE_MASK | regs.SRRCTL_BSIZEPACKET_MASK
		srrctl |= regs.SRRCTL_DESCTYPE_ADV_ONE | bsize | regs.SRRCTL_DROP_EN
		if n.cfg.FlowControl {
			srrctl &^= regs.SRRCTL_DROP_EN
		}
		n.dev.Write32(regs.SRRCTL(i), srrctl)
		// Ring base, length, head and tail (7.1.9, 8.2.3.8.1-5).
		q.Program(family)
	}
	// Queue i counts in statistics counter set i (RQSMR, 8.2.3.8.11).
	mapQueueStats(n.dev, regs.RQSMR, n.cfg.RxQueues)
	if n.cfg.RxQueues > 1 {
		n.setupRSS()
	}
	// RXCSUM (8.2.3.7.5): the IPv4 and TCP/UDP checksum checks are always
	// on (7.1.11); PCSD makes the write-back's second dword the RSS hash
	// rather than IP ID and fragment checksum, as Linux's ixgbe does.
	n.dev.Write32(regs.RXCSUM, n.dev.Read32(regs.RXCSUM)&^regs.RXCSUM_IPPCSE|regs.RXCSUM_PCSD)
	// End of 4.6.7: no-snoop off; DCA_RXCTRL bit 12 "reserved, must be
	// set to 0".
	n.setBits(regs.CTRL_EXT, regs.CTRL_EXT_NS_DIS)
	for i := 0; i < n.cfg.RxQueues; i++ {
		n.clearBits(regs.DCA_RXCTRL(i), regs.DCA_RXCTRL_RESERVED12)
	}
	n.setBits(regs.RXCTRL, regs.RXCTRL_RXEN)
	return nil
}

// mapQueueStats programs the queue statistic mapping registers (RQSMR or
// TQSM, datasheet 8.2.3.8.11 / 8.2.3.9.14): byte k of register r maps queue
// 4r+k to counter set 4r+k.
func mapQueueStats(dev Device, reg func(int) uint32, queues int) {
	for r := 0; r*4 < queues; r++ {
		var v uint32
		for k := 0; k < 4 && 4*r+k < queues; k++ {
			v |= uint32(4*r+k) << (8 * k)
		}
		dev.Write32(reg(r), v)
	}
}

func (n *NIC) newRxQueue(rc *advring.Config, i int) (*advring.RxQueue, error) {
	pc := n.cfg.Mempool
	if pc.Name == "" {
		pc.Name = fmt.Sprintf("%s-rx%d", n.name, i)
	} else {
		pc.Name = fmt.Sprintf("%s-rx%d", pc.Name, i)
	}
	pool, err := dma.NewMempool(n.dev.DMA(), pc)
	if err != nil {
		return nil, fmt.Errorf("ixgbe: %s: RX queue %d: %w", n.name, i, err)
	}
	q, err := advring.NewRxQueue(rc, advring.RxConfig{Queue: i, Size: n.cfg.RxRingSize, Pool: pool,
		VLANStrip: n.cfg.VLANStrip, RSSHash: n.cfg.RxQueues > 1})
	if err != nil {
		pool.Release()
		return nil, fmt.Errorf("ixgbe: %s: %w", n.name, err)
	}
	return q, nil
}

// TXDCTL thresholds (datasheet 7.2.3.4.1, 8.2.3.9.10): prefetch when fewer
// than 36 descriptors are cached and at least 8 are available in host
// memory (ixy's values, from DPDK). WTHRESH is 0: every descriptor with RS
// is written back as soon as it is done, so the buffers of the last frames
// of a burst come back without waiting for more traffic (with WTHRESH > 0
// up to WTHRESH-1 write-backs can stay pending while the queue is idle).
const (
	txPTHRESH = 36
	txHTHRESH = 8
	txWTHRESH = 0
)

// initTx is datasheet 4.6.8 without starting the queues.
func (n *NIC) initTx() error {
	// Append the CRC and pad short frames to 64 bytes.
	n.setBits(regs.HLREG0, regs.HLREG0_TXCRCEN|regs.HLREG0_TXPADEN)
	// All of the transmit packet buffer to packet buffer 0 (4.6.11.3.1;
	// ixy writes 40 KB, the per-TC size with four traffic classes).
	n.dev.Write32(regs.TXPBSIZE(0), txPacketBufferKB<<10)
	for i := 1; i < 8; i++ {
		n.dev.Write32(regs.TXPBSIZE(i), 0)
	}
	// MAX_BYTES_NUM_REQ is the 12-bit field 11:0 (8.2.3.9.15); ixy writes
	// 0xFFFF, Snabb 0xFFF: the field's maximum either way.
	n.dev.Write32(regs.DTXMXSZRQ, 0xFFF)
	// Descriptor arbiter on (it is only disabled while DCB is changed).
	n.clearBits(regs.RTTDCS, regs.RTTDCS_ARBDIS)

	rc := n.ringConfig()
	for i := 0; i < n.cfg.TxQueues; i++ {
		q, err := advring.NewTxQueue(rc, advring.TxConfig{Queue: i, Size: n.cfg.TxRingSize, MaxFrame: n.maxFrame})
		if err != nil {
			return fmt.Errorf("ixgbe: %s: %w", n.name, err)
		}
		n.port.Tx = append(n.port.Tx, q)
		q.Program(family)
		v := n.dev.Read32(regs.TXDCTL(i))
		v &^= regs.TXDCTL_PTHRESH | regs.TXDCTL_HTHRESH | regs.TXDCTL_WTHRESH
		v |= txPTHRESH | txHTHRESH<<regs.TXDCTL_HTHRESH_SHIFT | txWTHRESH<<regs.TXDCTL_WTHRESH_SHIFT
		n.dev.Write32(regs.TXDCTL(i), v)
	}
	mapQueueStats(n.dev, regs.TQSM, n.cfg.TxQueues)
	// Transmit DMA on, read-modify-write: DMATXCTL.VT (bits 31:16) holds the
	// ether type inserted with VLE (8.2.3.9.2, reset 0x8100). The reset value
	// is checked: a VT other than 802.1Q's (firmware or an earlier driver
	// left it, or a reset that did not happen) would make every TxVLAN frame
	// carry that ether type, so it is set to 0x8100 and counted in
	// DeviceInfo.DMATXCTLFixed.
	v := n.dev.Read32(regs.DMATXCTL)
	n.info.DMATXCTLReset = v
	if vt := v & regs.DMATXCTL_VT_MASK >> regs.DMATXCTL_VT_SHIFT; vt != 0x8100 {
		n.info.DMATXCTLFixed = true
		v = v&^regs.DMATXCTL_VT_MASK | 0x8100<<regs.DMATXCTL_VT_SHIFT
	}
	n.dev.Write32(regs.DMATXCTL, v|regs.DMATXCTL_TE)
	return nil
}

// startRx fills the ring with buffers, enables the queue, waits for the
// enable to take, and hands the ring to the device (4.6.7: "bump the tail
// pointer"), keeping one descriptor back (RDT = N-1).
func (n *NIC) startRx(q *advring.RxQueue) error {
	if err := q.Fill(); err != nil {
		return fmt.Errorf("ixgbe: %s: %w", n.name, err)
	}
	i := q.Queue()
	enable := uint32(regs.RXDCTL_ENABLE)
	if n.cfg.VLANStrip {
		enable |= regs.RXDCTL_VME // strip 802.1Q tags (8.2.3.8.9)
	}
	n.setBits(regs.RXDCTL(i), enable)
	if err := n.waitSet(regs.RXDCTL(i), regs.RXDCTL_ENABLE, fmt.Sprintf("RXDCTL[%d].ENABLE (bit 25)", i), "4.6.7"); err != nil {
		return err
	}
	q.Start()
	return nil
}

// startTx enables transmit queue i (4.6.8) and waits for the enable. Head
// and tail are 0 from Program.
func (n *NIC) startTx(i int) error {
	n.setBits(regs.TXDCTL(i), regs.TXDCTL_ENABLE)
	return n.waitSet(regs.TXDCTL(i), regs.TXDCTL_ENABLE, fmt.Sprintf("TXDCTL[%d].ENABLE (bit 25)", i), "4.6.8")
}

// stopLocked disables the queues and the units and reclaims the buffers.
func (n *NIC) stopLocked() error {
	if n.is(stateStopped) && !n.stuck {
		return nil
	}
	n.setState(stateStopped)
	// No batch starts from now on; wait for those running (gate.go). If one
	// never ends, touch nothing: the rings stay as they are, and a later
	// Stop or Close tries again.
	if err := n.port.Quiesce("ixgbe: " + n.name); err != nil {
		n.stuck = true
		return err
	}
	n.stuck = false
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if !n.checkGone() {
		// Let the TX rings drain (every posted descriptor written back),
		// reclaiming as they complete.
		if err := n.port.Drain(n.clock, pollTimeout, n.checkGone); err != nil {
			note(fmt.Errorf("ixgbe: %s: %w", n.name, err))
		}
	}
	// Disable the queues (4.6.7.1 / 4.6.8.1): clear ENABLE and wait until
	// it reads 0, then turn the units off.
	for i := range n.port.Rx {
		if !n.is(stateGone) {
			n.clearBits(regs.RXDCTL(i), regs.RXDCTL_ENABLE)
			note(n.waitClear(regs.RXDCTL(i), regs.RXDCTL_ENABLE, fmt.Sprintf("RXDCTL[%d].ENABLE (bit 25)", i), "4.6.7.1"))
		}
	}
	for i := range n.port.Tx {
		if !n.is(stateGone) {
			n.clearBits(regs.TXDCTL(i), regs.TXDCTL_ENABLE)
			note(n.waitClear(regs.TXDCTL(i), regs.TXDCTL_ENABLE, fmt.Sprintf("TXDCTL[%d].ENABLE (bit 25)", i), "4.6.8.1"))
		}
	}
	if !n.is(stateGone) {
		n.clearBits(regs.RXCTRL, regs.RXCTRL_RXEN)
		n.clearBits(regs.DMATXCTL, regs.DMATXCTL_TE)
	}
	// The device no longer touches the rings: take every buffer back.
	n.port.ReclaimAll()
	return firstErr
}

// Register helpers: the engine's register waits (advring.Waiter: setBits
// and clearBits read-modify-write; waitSet and waitClear poll for at most
// pollTimeout of the NIC's clock, backing off from 10 us to 10 ms, and a
// register reading all ones while STATUS does too is a device gone), with
// this driver's clock and message prefix.
func (n *NIC) waits() *advring.Waiter {
	return &advring.Waiter{Dev: n.dev, Clock: n.clock, Timeout: pollTimeout, Prefix: "ixgbe: " + n.name, Gone: n.checkGone}
}

func (n *NIC) setBits(reg, bits uint32)   { n.waits().SetBits(reg, bits) }
func (n *NIC) clearBits(reg, bits uint32) { n.waits().ClearBits(reg, bits) }
func (n *NIC) waitSet(reg, mask uint32, what, section string) error {
	return n.waits().WaitSet(reg, mask, what, section)
}
func (n *NIC) waitClear(reg, mask uint32, what, section string) error {
	return n.waits().WaitClear(reg, mask, what, section)
}

// Flow control settings (datasheet 3.7.7, registers 8.2.3.3).
const (
	// FlowControlHeadroom is the room left above the XOFF threshold
	// (FCRTH[0] = RXPBSIZE[0] - headroom): what still arrives after the
	// fill crosses it. That is the frame being received, the frame the
	// MAC may be sending ahead of the XOFF, the partner's frame in
	// progress when the XOFF arrives, its reaction time (a few pause
	// quanta) and the bits on the wire and in both PHYs: a few max-size
	// frames at 10 Gb/s. 24 KB is the margin Linux's ixgbe also leaves
	// below the buffer's end (RXPBSIZE - 0x6000), about 20 us of 10 Gb/s.
	FlowControlHeadroom = 24 << 10
	// FlowControlHysteresis is how far the fill must fall below FCRTH[0]
	// before the XON (FCRTL[0] = FCRTH[0] - hysteresis): large enough that
	// XOFF/XON do not alternate every frame, small enough that the
	// partner resumes long before the buffer runs dry.
	FlowControlHysteresis = 32 << 10
	// FlowControlPauseTime is the pause time of XOFF frames (FCTTV[0]),
	// in quanta of 512 bit times: 0xFFFF, 3.36 ms at 10 Gb/s, the longest
	// there is, as in Linux's ixgbe. XON ends the pause sooner.
	FlowControlPauseTime = 0xFFFF
	// FlowControlRefresh is the XOFF refresh threshold (FCRTV): half the
	// pause time, so that a still-full receiver renews the pause well
	// before it runs out.
	FlowControlRefresh = FlowControlPauseTime / 2
)

// setupFlowControl programs link flow control (3.7.7) or turns it off.
// Thresholds are relative to packet buffer 0, the only one used without
// DCB; the threshold fields are bits 18:5 in 32-byte units, so a byte
// count with its low 5 bits clear is the field's value.
func (n *NIC) setupFlowControl() {
	pb := n.dev.Read32(regs.RXPBSIZE(0)) & 0x000FFC00 // bytes (KB in bits 19:10)
	mflcn := n.dev.Read32(regs.MFLCN) &^ (regs.MFLCN_RFCE | regs.MFLCN_RPFCE | regs.MFLCN_PMCF | regs.MFLCN_DPF)
	fccfg := n.dev.Read32(regs.FCCFG) &^ regs.FCCFG_TFCE_MASK
	if !n.cfg.FlowControl || pb <= FlowControlHeadroom+FlowControlHysteresis {
		for i := 0; i < 8; i++ {
			n.dev.Write32(regs.FCRTL(i), 0)
			n.dev.Write32(regs.FCRTH(i), 0)
		}
		n.dev.Write32(regs.FCCFG, fccfg|regs.FCCFG_TFCE_DISABLED)
		n.dev.Write32(regs.MFLCN, mflcn)
		return
	}
	high := (pb - FlowControlHeadroom) & regs.FCRT_THRESH_MASK
	low := (high - FlowControlHysteresis) & regs.FCRT_THRESH_MASK
	n.dev.Write32(regs.FCTTV(0), FlowControlPauseTime|FlowControlPauseTime<<16)
	n.dev.Write32(regs.FCRTV, FlowControlRefresh)
	n.dev.Write32(regs.FCRTL(0), low|regs.FCRTL_XONE)
	n.dev.Write32(regs.FCRTH(0), high|regs.FCRTH_FCEN)
	for i := 1; i < 8; i++ {
		n.dev.Write32(regs.FCRTL(i), 0)
		n.dev.Write32(regs.FCRTH(i), 0)
	}
	// Send link PAUSE frames; act on received ones and consume them.
	n.dev.Write32(regs.FCCFG, fccfg|regs.FCCFG_TFCE_802_3X)
	n.dev.Write32(regs.MFLCN, mflcn|regs.MFLCN_RFCE)
}
