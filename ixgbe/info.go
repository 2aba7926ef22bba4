package ixgbe

import "net"

// DeviceInfo is what New learnt about the device: its PCI identity and port
// type (support.go), the EEPROM's contents (eeprom.go), the SFP+ module in
// the cage (sfp.go), and reset values it had to correct.
type DeviceInfo struct {
	VendorID, DeviceID uint16 // 0 when the Device does not report them
	Model              string
	Media              Media

	// EEPROM (read through EERD, datasheet 8.2.3.2.2).
	EEPROMChecksum uint16           // the checksum word (0x3F), validated by New
	PermanentMAC   net.HardwareAddr // the port's MAC address in the EEPROM
	PBA            string           // printed board assembly number
	ETrackID       uint32           // NVM version (eTrack ID, words 0x2E:0x2D)
	// RARMatchesEEPROM: receive address 0 (RAL[0]/RAH[0]), which the
	// device loads from the EEPROM at reset, equals PermanentMAC.
	RARMatchesEEPROM bool

	// SFP+ module (I2C, SFF-8472); Present false when the cage is empty.
	SFP SFPModule
	// SFPError says why the module could not be identified ("" when it
	// was, or the cage is empty).
	SFPError string

	// DMATXCTLReset is DMATXCTL as found after the reset; DMATXCTLFixed
	// says its VLAN ether type was not 0x8100 and was corrected.
	DMATXCTLReset uint32
	DMATXCTLFixed bool
}

// Info returns what New learnt about the device.
func (n *NIC) Info() DeviceInfo {
	i := n.info
	i.PermanentMAC = append(net.HardwareAddr(nil), n.info.PermanentMAC...)
	return i
}
