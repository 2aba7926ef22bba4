package igb

import (
	"net"

	"github.com/verinic/verinic/trace"
)

// DeviceInfo is what New learnt about the device.
type DeviceInfo struct {
	VendorID, DeviceID uint16 // 0 when the Device does not report them
	Model              string
	Media              Media

	// EEPROM (read through EERD, datasheet 8.4.2).
	EEPROMChecksum uint16           // the checksum word (0x3F)
	PermanentMAC   net.HardwareAddr // the MAC address in the EEPROM (nil: not read or invalid)
	EEPROMError    string           // why PermanentMAC is nil ("" when it is not)
	// EEPROMAutoRead: EECD.AUTO_RD was set within 10 ms of the reset.
	EEPROMAutoRead bool
	// RARMatchesEEPROM: receive address 0, which the device loads from the
	// EEPROM at reset, equalled PermanentMAC before the driver touched it.
	RARMatchesEEPROM bool

	// PHYID is the internal PHY's identifier (PHY registers 2 and 3 through
	// MDIC); PHYError says why a PHY access failed.
	PHYID    uint32
	PHYError string
}

// Info returns what New learnt about the device.
func (n *NIC) Info() DeviceInfo {
	i := n.info
	i.PermanentMAC = append(net.HardwareAddr(nil), n.info.PermanentMAC...)
	return i
}

// TracePools describes the RX queues' buffer pools for a trace header
// (trace/SCHEMA.md "pools"), as those of trace device Config.DevID.
func (n *NIC) TracePools() []trace.PoolInfo { return n.port.TracePools(n.cfg.DevID) }
