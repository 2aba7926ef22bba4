package igb

import (
	"net"

	"github.com/verinic/verinic/trace"
)

// DeviceInfo is what New learnt about the device: its PCI identity
// (support.go), the EEPROM read through EERD (datasheet 8.4.2) and the
// internal PHY's identifier read through MDIC (8.2.4).
type DeviceInfo struct {
	VendorID, DeviceID uint16 // 0 when the Device does not report them
	Model              string
	Media              Media

	// PermanentMAC is the address in EEPROM words 0-2 (nil when the EEPROM
	// could not be read or is invalid: EEPROMError says why), and
	// EEPROMChecksum its checksum word (0x3F). RARMatchesEEPROM: receive
	// address 0, which the device loads from the EEPROM at reset, held
	// PermanentMAC before the driver touched it. EEPROMAutoRead: EECD.AUTO_RD
	// was set within 10 ms of the reset.
	PermanentMAC                     net.HardwareAddr
	EEPROMChecksum                   uint16
	EEPROMError                      string
	RARMatchesEEPROM, EEPROMAutoRead bool

	PHYID    uint32 // PHY registers 2 and 3
	PHYError string // why a PHY access failed
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
