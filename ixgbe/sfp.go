package ixgbe

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// SFP+ module identification over the 82599's I2C interface (I2CCTL,
// datasheet 8.2.3.1.4), bit-banged as Linux's ixgbe_phy.c does, from the
// module's serial ID EEPROM at two-wire address 0xA0 (SFF-8472; both cited
// from memory, docs/NOTES.md). The PHY semaphore of the port (SW_FW_SYNC,
// 10.5.4) is held while the bus is used. Identification is informational:
// the driver does not refuse modules by vendor as Linux does.

// SFPModule identifies the module in an SFP+ cage from its serial ID
// EEPROM (SFF-8472).
type SFPModule struct {
	Present    bool
	Identifier byte   // byte 0: 0x03 is SFP/SFP+
	Type       string // "10GBASE-SR", "10GBASE-LR", "direct attach (passive)", ...
	Vendor     string
	OUI        [3]byte
	PartNumber string
}

// String formats the module for humans.
func (m SFPModule) String() string {
	if !m.Present {
		return "no module"
	}
	return fmt.Sprintf("%s, %s %s (OUI %02x:%02x:%02x)", m.Type, m.Vendor, m.PartNumber, m.OUI[0], m.OUI[1], m.OUI[2])
}

// errI2CNoAck: nothing acknowledged a byte (an empty cage, or a module
// that is not answering).
var errI2CNoAck = errors.New("no acknowledge on the SFP+ I2C bus")

// i2cHalfPeriod is half an SCL period at standard mode (100 kHz).
const i2cHalfPeriod = 5 * time.Microsecond

// identifySFP reads the module's identification bytes into n.info.SFP.
func (n *NIC) identifySFP() error {
	lan := (n.dev.Read32(regs.STATUS) & regs.STATUS_LAN_ID) >> 2
	phy := uint32(regs.SW_FW_SYNC_SW_PHY0)
	if lan&1 == 1 {
		phy = regs.SW_FW_SYNC_SW_PHY1
	}
	if err := n.acquireSWFW(phy); err != nil {
		return err
	}
	defer n.releaseSWFW(phy)
	var page [64]byte
	if err := n.i2cRead(regs.SFPAddr, 0, page[:]); err != nil {
		n.info.SFP = SFPModule{}
		if errors.Is(err, errI2CNoAck) {
			return nil // empty cage
		}
		return err
	}
	m := SFPModule{Present: true, Identifier: page[regs.SFPIdentifier]}
	ascii := func(b []byte) string { return strings.TrimRight(string(b), " \x00") }
	m.Vendor = ascii(page[regs.SFPVendorName : regs.SFPVendorName+16])
	m.PartNumber = ascii(page[regs.SFPVendorPN : regs.SFPVendorPN+16])
	copy(m.OUI[:], page[regs.SFPVendorOUI:regs.SFPVendorOUI+3])
	m.Type = sfpType(page[:])
	n.info.SFP = m
	return nil
}

// sfpType names the module from its compliance bytes (SFF-8472 table
// 5-3), in the order Linux's ixgbe_identify_sfp_module_generic checks them.
func sfpType(p []byte) string {
	if p[regs.SFPIdentifier] != regs.SFPIDSFP {
		return fmt.Sprintf("not an SFP/SFP+ module (identifier %#02x)", p[regs.SFPIdentifier])
	}
	c10, c1, cable := p[regs.SFP10GCompliance], p[regs.SFP1GCompliance], p[regs.SFPCableTech]
	switch {
	case cable&regs.SFPCablePassive != 0:
		return "direct attach (passive)"
	case cable&regs.SFPCableActive != 0:
		return "direct attach (active)"
	case c10&regs.SFP10GBaseSR != 0:
		return "10GBASE-SR"
	case c10&regs.SFP10GBaseLR != 0:
		return "10GBASE-LR"
	case c10&regs.SFP10GBaseLRM != 0:
		return "10GBASE-LRM"
	case c10&regs.SFP10GBaseER != 0:
		return "10GBASE-ER"
	case c1&0x01 != 0:
		return "1000BASE-SX"
	case c1&0x02 != 0:
		return "1000BASE-LX"
	case c1&0x04 != 0:
		return "1000BASE-CX"
	case c1&0x08 != 0:
		return "1000BASE-T"
	}
	return "unknown"
}

// i2cRead reads len(dst) bytes from offset off of the device at two-wire
// address addr: START, address (write), offset, repeated START, address
// (read), then bytes, each acknowledged but the last, and STOP.
func (n *NIC) i2cRead(addr, off byte, dst []byte) error {
	n.i2cStart()
	err := n.i2cWriteByte(addr)
	if err == nil {
		err = n.i2cWriteByte(off)
	}
	if err == nil {
		n.i2cStart()
		err = n.i2cWriteByte(addr | 1)
	}
	if err == nil {
		for i := range dst {
			dst[i] = n.i2cReadByte(i < len(dst)-1)
		}
	}
	n.i2cStop()
	return err
}

// i2cSet drives SCL and SDA (1 releases a line).
func (n *NIC) i2cSet(scl, sda bool) {
	v := n.dev.Read32(regs.I2CCTL) &^ (regs.I2CCTL_CLK_OUT | regs.I2CCTL_DATA_OUT)
	if scl {
		v |= regs.I2CCTL_CLK_OUT
	}
	if sda {
		v |= regs.I2CCTL_DATA_OUT
	}
	n.dev.Write32(regs.I2CCTL, v)
	n.i2cDelay()
}

func (n *NIC) i2cSDA() bool { return n.dev.Read32(regs.I2CCTL)&regs.I2CCTL_DATA_IN != 0 }

// i2cDelay waits half an SCL period: on a virtual clock (a stepped
// simulator's) by sleeping, which only moves virtual time; otherwise by
// spinning on the wall clock, as a sleep would take ten times longer.
func (n *NIC) i2cDelay() {
	if v, ok := n.clock.(interface{ Virtual() bool }); ok && v.Virtual() {
		n.clock.Sleep(i2cHalfPeriod)
		return
	}
	for start := time.Now(); time.Since(start) < i2cHalfPeriod; {
	}
}

// i2cStart is a (repeated) START: SDA falls while SCL is high.
func (n *NIC) i2cStart() {
	n.i2cSet(false, true)
	n.i2cSet(true, true)
	n.i2cSet(true, false)
	n.i2cSet(false, false)
}

// i2cStop is a STOP: SDA rises while SCL is high.
func (n *NIC) i2cStop() {
	n.i2cSet(false, false)
	n.i2cSet(true, false)
	n.i2cSet(true, true)
}

// i2cWriteByte clocks out b, MSB first, and reads the acknowledge.
func (n *NIC) i2cWriteByte(b byte) error {
	for i := 7; i >= 0; i-- {
		bit := b>>uint(i)&1 == 1
		n.i2cSet(false, bit)
		n.i2cSet(true, bit)
	}
	n.i2cSet(false, true) // release SDA for the acknowledge
	n.i2cSet(true, true)
	ack := !n.i2cSDA()
	n.i2cSet(false, true)
	if !ack {
		return fmt.Errorf("ixgbe: %s: byte %#02x: %w", n.name, b, errI2CNoAck)
	}
	return nil
}

// i2cReadByte clocks in a byte and acknowledges it if more follow.
func (n *NIC) i2cReadByte(ack bool) byte {
	var b byte
	for i := 0; i < 8; i++ {
		n.i2cSet(false, true)
		n.i2cSet(true, true)
		b <<= 1
		if n.i2cSDA() {
			b |= 1
		}
	}
	n.i2cSet(false, !ack)
	n.i2cSet(true, !ack)
	n.i2cSet(false, true)
	return b
}
