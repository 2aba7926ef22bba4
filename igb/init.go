package igb

import (
	"cmp"
	"fmt"
	"net"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/igb/regs"
)

// init runs the initialization sequence (datasheet 4.5, from memory; in
// the order of Linux's igb_reset / igb_configure for the 82576), with a
// timeout on every poll. A device that reads all ones is not reset.
func (n *NIC) init() error {
	if n.checkGone() {
		return fmt.Errorf("igb: %s: STATUS reads 0xFFFFFFFF before reset: %w", n.name, ErrDeviceGone)
	}
	n.disableInterrupts()
	if err := n.reset(); err != nil {
		return err
	}
	n.disableInterrupts()
	n.readEEPROM()
	// Receive address 0 is loaded from the EEPROM at reset (8.10.x); put
	// it there if the EEPROM gave a valid address that it does not hold.
	if mac := n.info.PermanentMAC; mac != nil && !n.info.RARMatchesEEPROM {
		n.writeRAR(0, mac)
	}
	for r := 1; r < regs.RAEntries; r++ {
		n.dev.Write32(regs.RAH(r), 0)
		n.dev.Write32(regs.RAL(r), 0)
	}
	for i := 0; i < regs.MTAEntries; i++ {
		n.dev.Write32(regs.MTA(i), 0)
	}
	n.setupLink()
	n.readHardwareStats() // clear on read (8.19)
	if err := n.initRx(); err != nil {
		return err
	}
	if err := n.initTx(); err != nil {
		return err
	}
	n.port.Open()
	for i, q := range n.port.Rx {
		if err := q.Fill(); err != nil {
			return fmt.Errorf("igb: %s: RX queue %d: fill ring: %w", n.name, i, err)
		}
		n.w.SetBits(regs.RXDCTL(i), regs.RXDCTL_ENABLE)
		if err := n.w.WaitSet(regs.RXDCTL(i), regs.RXDCTL_ENABLE, fmt.Sprintf("RXDCTL[%d].ENABLE (bit 25)", i), "8.10.x"); err != nil {
			return err
		}
		q.Start() // RDT = N-1: the ring is the device's but one descriptor
	}
	for i := range n.port.Tx {
		n.w.SetBits(regs.TXDCTL(i), regs.TXDCTL_ENABLE)
		if err := n.w.WaitSet(regs.TXDCTL(i), regs.TXDCTL_ENABLE, fmt.Sprintf("TXDCTL[%d].ENABLE (bit 25)", i), "8.12.x"); err != nil {
			return err
		}
	}
	// Receiver and transmitter on last, once every queue is ready.
	rctl := n.dev.Read32(regs.RCTL)
	rctl &^= regs.RCTL_LBM_MASK | regs.RCTL_MO_MASK | regs.RCTL_BSIZE | regs.RCTL_DTYP_MASK | regs.RCTL_LPE |
		regs.RCTL_SBP | regs.RCTL_VFE | regs.RCTL_UPE | regs.RCTL_MPE | regs.RCTL_PMCF
	// Strip the CRC (so that lengths are the frame's, 8.10.1), accept
	// broadcasts, discard PAUSE frames.
	rctl |= regs.RCTL_EN | regs.RCTL_BAM | regs.RCTL_SECRC | regs.RCTL_DPF
	if n.cfg.Promiscuous {
		rctl |= regs.RCTL_UPE | regs.RCTL_MPE
	}
	n.dev.Write32(regs.RCTL, rctl)
	n.w.SetBits(regs.TCTL, regs.TCTL_EN)
	return nil
}

// disableInterrupts masks every cause, legacy and extended, and clears the
// pending ones (datasheet 4.5.x; Linux's igb_irq_disable).
func (n *NIC) disableInterrupts() {
	n.dev.Write32(regs.EIAM, 0)
	n.dev.Write32(regs.EIMC, allOnes)
	n.dev.Write32(regs.EIAC, 0)
	n.dev.Write32(regs.IAM, 0)
	n.dev.Write32(regs.IMC, allOnes)
	n.dev.Read32(regs.ICR)
	n.dev.Read32(regs.EICR)
}

// reset is the software reset of datasheet 4.3.x: master disable (stop
// DMA), CTRL.RST, wait for it to clear, then let the EEPROM auto-read
// finish.
func (n *NIC) reset() error {
	n.w.SetBits(regs.CTRL, regs.CTRL_MDE)
	start := n.clock.Now()
	for n.dev.Read32(regs.STATUS)&regs.STATUS_GIO_ME != 0 {
		if n.clock.Now().Sub(start) >= 80*time.Millisecond { // Linux: MASTER_DISABLE_TIMEOUT 800 x 100 us
			break // reset anyway, as Linux does
		}
		n.clock.Sleep(100 * time.Microsecond)
	}
	n.w.SetBits(regs.CTRL, regs.CTRL_RST)
	// "Software should wait at least 1 ms after setting CTRL.RST before
	// accessing the device" (from memory; Linux's igb waits 1 ms too).
	n.clock.Sleep(time.Millisecond)
	if err := n.w.WaitClear(regs.CTRL, regs.CTRL_RST, "CTRL.RST (bit 26)", "8.2.1"); err != nil {
		return err
	}
	// EECD.AUTO_RD says the EEPROM was read after the reset. Linux's igb
	// waits 10 ms for it and goes on without it; so does this driver, and
	// records what it saw (QEMU's igb never sets it: docs/NOTES.md).
	start = n.clock.Now()
	for {
		if n.dev.Read32(regs.EECD)&regs.EECD_AUTO_RD != 0 {
			n.info.EEPROMAutoRead = true
			break
		}
		if n.clock.Now().Sub(start) >= 10*time.Millisecond {
			break
		}
		n.clock.Sleep(time.Millisecond)
	}
	n.w.ClearBits(regs.CTRL, regs.CTRL_MDE)
	return nil
}

// setupLink brings up the copper link (datasheet 3.5.x and 8.2.1, from
// memory; Linux's igb_setup_copper_link): the MAC takes speed and duplex
// from the PHY (CTRL.SLU set, forced speed and duplex off, link reset
// released), and the PHY restarts auto-negotiation (MDIC write of its
// control register: auto-negotiation enable and restart, 1000 Mb/s full
// duplex). The link comes up asynchronously; WaitForLink waits for it.
//
// QEMU's igb needs the restart: after CTRL.RST its PHY is back to its reset
// state with the link down, and only an auto-negotiation restart (500 ms of
// virtual time) raises STATUS.LU again; CTRL.SLU alone does nothing there.
func (n *NIC) setupLink() {
	ctrl := n.dev.Read32(regs.CTRL)
	ctrl &^= regs.CTRL_LRST | regs.CTRL_FRCSPD | regs.CTRL_FRCDPX | regs.CTRL_PHY_RST
	ctrl |= regs.CTRL_SLU
	if n.cfg.VLANStrip {
		ctrl |= regs.CTRL_VME
	} else {
		ctrl &^= regs.CTRL_VME
	}
	n.dev.Write32(regs.CTRL, ctrl)
	n.w.SetBits(regs.CTRL_EXT, regs.CTRL_EXT_DRV_LOAD)
	if id1, err := n.readPHY(regs.PHY_ID1); err == nil {
		if id2, err := n.readPHY(regs.PHY_ID2); err == nil {
			n.info.PHYID = uint32(id1)<<16 | uint32(id2)
		}
	} else {
		n.info.PHYError = err.Error()
	}
	bmcr := uint16(regs.PHY_CTRL_ANEN | regs.PHY_CTRL_RESTART | regs.PHY_CTRL_FD | regs.PHY_CTRL_SPD1000)
	if err := n.writePHY(regs.PHY_CONTROL, bmcr); err != nil && n.info.PHYError == "" {
		n.info.PHYError = err.Error()
	}
}

// readPHY reads PHY register reg through MDIC (8.2.4).
func (n *NIC) readPHY(reg int) (uint16, error) {
	v, err := n.mdic(uint32(reg)<<regs.MDIC_REG_SHIFT | regs.MDICInternalPHY<<regs.MDIC_PHY_SHIFT | regs.MDIC_OP_READ)
	return uint16(v & regs.MDIC_DATA_MASK), err
}

// writePHY writes PHY register reg through MDIC.
func (n *NIC) writePHY(reg int, v uint16) error {
	_, err := n.mdic(uint32(v) | uint32(reg)<<regs.MDIC_REG_SHIFT | regs.MDICInternalPHY<<regs.MDIC_PHY_SHIFT | regs.MDIC_OP_WRITE)
	return err
}

// mdic runs one MDIC transaction and waits for READY (Linux polls 1920 x
// 50 us); ERROR set with READY is a failed access.
func (n *NIC) mdic(cmd uint32) (uint32, error) {
	n.dev.Write32(regs.MDIC, cmd)
	start := n.clock.Now()
	for {
		v := n.dev.Read32(regs.MDIC)
		if v == allOnes {
			return 0, ErrDeviceGone
		}
		if v&regs.MDIC_READY != 0 {
			if v&regs.MDIC_ERROR != 0 {
				return 0, fmt.Errorf("igb: %s: MDIC %#08x: PHY access failed (MDIC.E, datasheet 8.2.4)", n.name, cmd)
			}
			return v, nil
		}
		if n.clock.Now().Sub(start) >= 100*time.Millisecond {
			return 0, fmt.Errorf("igb: %s: MDIC %#08x: timeout waiting for MDIC.R (bit 28) (datasheet 8.2.4)", n.name, cmd)
		}
		n.clock.Sleep(50 * time.Microsecond)
	}
}

// readEEPROM reads the EEPROM's first 64 words through EERD (8.4.2),
// validates the checksum (words 0x00-0x3F sum to 0xBABA) and takes the MAC
// address from words 0-2. A device that does not complete EERD reads, or an
// image with a bad checksum, leaves PermanentMAC nil: the driver then uses
// what receive address 0 holds. It records what it found in Info.
func (n *NIC) readEEPROM() {
	var words [regs.NVMChecksum + 1]uint16
	for a := range words {
		w, err := n.readEEPROMWord(a)
		if err != nil {
			n.info.EEPROMError = err.Error()
			return
		}
		words[a] = w
	}
	var sum uint16
	for _, w := range words {
		sum += w
	}
	n.info.EEPROMChecksum = words[regs.NVMChecksum]
	if sum != regs.NVMSum {
		n.info.EEPROMError = fmt.Sprintf("EEPROM words 0x00-0x3F sum to %#04x, want %#04x (checksum word %#04x)", sum, regs.NVMSum, words[regs.NVMChecksum])
		return
	}
	mac := net.HardwareAddr{byte(words[0]), byte(words[0] >> 8), byte(words[1]), byte(words[1] >> 8), byte(words[2]), byte(words[2] >> 8)}
	if mac[0]&1 != 0 || mac.String() == "00:00:00:00:00:00" {
		n.info.EEPROMError = fmt.Sprintf("EEPROM MAC address %s is not a station address", mac)
		return
	}
	n.info.PermanentMAC = mac
	n.info.RARMatchesEEPROM = mac.String() == n.MAC().String()
}

func (n *NIC) readEEPROMWord(addr int) (uint16, error) {
	n.dev.Write32(regs.EERD, uint32(addr)<<regs.EERD_ADDR_SHIFT|regs.EERD_START)
	start := n.clock.Now()
	for {
		v := n.dev.Read32(regs.EERD)
		if v == allOnes {
			return 0, ErrDeviceGone
		}
		if v&regs.EERD_DONE != 0 {
			return uint16(v >> regs.EERD_DATA_SHIFT), nil
		}
		if n.clock.Now().Sub(start) >= 10*time.Millisecond {
			return 0, fmt.Errorf("EEPROM word %#x: timeout waiting for EERD.DONE (bit 1) (datasheet 8.4.2)", addr)
		}
		n.clock.Sleep(10 * time.Microsecond)
	}
}

// Receive descriptor thresholds (RXDCTL, 8.10.x): Linux's igb values for
// the 82576 with MSI-X (prefetch 8, host 8, write-back 1: every descriptor
// is written back as soon as it is done).
const (
	rxPTHRESH = 8
	rxHTHRESH = 8
	rxWTHRESH = 1
)

// initRx configures the receive unit and queues without enabling them.
func (n *NIC) initRx() error {
	n.w.ClearBits(regs.RCTL, regs.RCTL_EN)
	for i := 0; i < n.cfg.RxQueues; i++ {
		pc := n.cfg.Mempool
		pc.Name = fmt.Sprintf("%s-rx%d", cmp.Or(pc.Name, n.name), i)
		pool, err := dma.NewMempool(n.dev.DMA(), pc)
		if err != nil {
			return fmt.Errorf("igb: %s: RX queue %d: %w", n.name, i, err)
		}
		n.pools = append(n.pools, pool)
		q, err := advring.NewRxQueue(&n.ring, advring.RxConfig{Queue: i, Size: n.cfg.RxRingSize, Pool: pool,
			VLANStrip: n.cfg.VLANStrip, RSSHash: n.cfg.RxQueues > 1})
		if err != nil {
			return fmt.Errorf("igb: %s: %w", n.name, err)
		}
		n.port.Rx = append(n.port.Rx, q)
		// The queue is disabled while it is set up (queue 0 is enabled by
		// default on the 82576).
		n.w.ClearBits(regs.RXDCTL(i), regs.RXDCTL_ENABLE)
		if err := n.w.WaitClear(regs.RXDCTL(i), regs.RXDCTL_ENABLE, fmt.Sprintf("RXDCTL[%d].ENABLE (bit 25)", i), "8.10.x"); err != nil {
			return err
		}
		// Advanced one-buffer descriptors, the buffer size from the pool in
		// KB (1..127), drop when the queue has no descriptor (so that one
		// slow queue does not hold up the others in the packet buffer).
		bsize := uint32(min(pool.BufSize()/1024, regs.SRRCTL_BSIZEPKT_MASK))
		n.dev.Write32(regs.SRRCTL(i), regs.SRRCTL_DESCTYPE_ADV1|bsize|regs.SRRCTL_DROP_EN)
		q.Program(n.fam) // base, length, head 0, tail 0
		v := n.dev.Read32(regs.RXDCTL(i)) &^ regs.RXDCTL_THRESH_MASK
		n.dev.Write32(regs.RXDCTL(i), v|rxPTHRESH|rxHTHRESH<<regs.RXDCTL_HTHRESH_SHIFT|rxWTHRESH<<regs.RXDCTL_WTHRESH_SHIFT)
	}
	// RXCSUM: check IPv4 and TCP/UDP checksums; PCSD makes the write-back's
	// second dword the RSS hash (8.10.x; QEMU's igb applies RSS only with
	// PCSD set).
	n.dev.Write32(regs.RXCSUM, regs.RXCSUM_IPOFLD|regs.RXCSUM_TUOFLD|regs.RXCSUM_PCSD)
	if n.cfg.RxQueues > 1 {
		n.setupRSS()
	} else {
		n.dev.Write32(regs.MRQC, 0)
	}
	return nil
}

// Transmit descriptor thresholds (TXDCTL, 8.12.x): prefetch 8, host 1
// (Linux's igb), write-back 0: every descriptor with RS is written back as
// soon as it is done, so the buffers of a burst's last frames come back
// without waiting for more traffic.
const (
	txPTHRESH = 8
	txHTHRESH = 1
	txWTHRESH = 0
)

// initTx configures the transmit unit and queues without enabling them.
func (n *NIC) initTx() error {
	n.w.ClearBits(regs.TCTL, regs.TCTL_EN)
	tctl := n.dev.Read32(regs.TCTL) &^ (regs.TCTL_CT_MASK | regs.TCTL_COLD_MASK)
	// Pad short frames, retransmit on late collision, the collision
	// threshold and distance Linux uses (15, 63: full duplex ignores them).
	tctl |= regs.TCTL_PSP | regs.TCTL_RTLC | 15<<regs.TCTL_CT_SHIFT | 63<<regs.TCTL_COLD_SHIFT
	n.dev.Write32(regs.TCTL, tctl)
	for i := 0; i < n.cfg.TxQueues; i++ {
		n.w.ClearBits(regs.TXDCTL(i), regs.TXDCTL_ENABLE)
		if err := n.w.WaitClear(regs.TXDCTL(i), regs.TXDCTL_ENABLE, fmt.Sprintf("TXDCTL[%d].ENABLE (bit 25)", i), "8.12.x"); err != nil {
			return err
		}
		q, err := advring.NewTxQueue(&n.ring, advring.TxConfig{Queue: i, Size: n.cfg.TxRingSize, MaxFrame: maxFrame})
		if err != nil {
			return fmt.Errorf("igb: %s: %w", n.name, err)
		}
		n.port.Tx = append(n.port.Tx, q)
		q.Program(n.fam)
		v := n.dev.Read32(regs.TXDCTL(i)) &^ regs.TXDCTL_THRESH_MASK
		n.dev.Write32(regs.TXDCTL(i), v|txPTHRESH|txHTHRESH<<regs.TXDCTL_HTHRESH_SHIFT|txWTHRESH<<regs.TXDCTL_WTHRESH_SHIFT)
	}
	return nil
}
