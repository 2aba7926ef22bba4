package regs

// Registers and fields added for the EEPROM, the SFP+ module's I2C bus, the
// extended interrupt mask registers and the statistics Linux's ixgbe reads.
// Section numbers are the 82599 datasheet's (rev. 3.3), cited from memory
// (docs/NOTES.md); offsets and bits agree with Linux's ixgbe_type.h.

// Extended interrupt mask registers (datasheet 8.2.3.5.6-8.2.3.5.9): in
// MSI-X mode the 64 queue vectors' cause, mask-set, mask-clear and auto-mask
// bits live in the _EX pairs; bits 15:0 of EICS/EIMS/EIMC/EIAM mirror bits
// 15:0 of the first _EX register.
func EICS_EX(i int) uint32 { return 0x00A90 + 4*uint32(i) }
func EIMS_EX(i int) uint32 { return 0x00AA0 + 4*uint32(i) }
func EIMC_EX(i int) uint32 { return 0x00AB0 + 4*uint32(i) }
func EIAM_EX(i int) uint32 { return 0x00AD0 + 4*uint32(i) }

// IRQ_CLEAR_MASK is Intel's "mask everything" value for EIMC
// (IXGBE_IRQ_CLEAR_MASK in ixgbe_type.h), written to EIMC and to both
// EIMC_EX registers to disable every interrupt (datasheet 4.6.3.1).
const IRQ_CLEAR_MASK = 0xFFFFFFFF

// EEPROM read register (datasheet 8.2.3.2.2, EERD): software writes the word
// address with START, the device sets DONE with the word in DATA.
const (
	EERD = 0x10014

	EERD_START      = 1 << 0 // start a read
	EERD_DONE       = 1 << 1 // read done, DATA valid
	EERD_ADDR_SHIFT = 2      // word address, bits 15:2
	EERD_ADDR_MASK  = 0x3FFF << EERD_ADDR_SHIFT
	EERD_DATA_SHIFT = 16 // read data, bits 31:16
)

// EEPROM map (datasheet 6.2, 6.3; the pointer words as in Linux's
// ixgbe_type.h).
const (
	EEPROMPCIeAnalogPtr = 0x03   // first pointer word the checksum follows
	EEPROMCore0Ptr      = 0x09   // LAN core 0 module (port 0's MAC address)
	EEPROMCore1Ptr      = 0x0A   // LAN core 1 module (port 1's MAC address)
	EEPROMFirmwarePtr   = 0x0F   // firmware module: excluded from the checksum
	EEPROMPBA0          = 0x15   // part number word 0, or PBAGuard
	EEPROMPBA1          = 0x16   // part number word 1, or pointer to the PBA block
	EEPROMPBAGuard      = 0xFAFA // EEPROMPBA0 says: EEPROMPBA1 is a pointer
	EEPROMVersionL      = 0x2D   // eTrack ID, low word
	EEPROMVersionH      = 0x2E   // eTrack ID, high word
	EEPROMChecksum      = 0x3F   // checksum word
	EEPROMSum           = 0xBABA // words 0x00-0x3F plus the pointed sections sum to this
)

// EEPROMWordSum adds the words the checksum covers (datasheet 6.3,
// EEPROM checksum; Linux's ixgbe_calc_eeprom_checksum_generic): words
// 0x00-0x3E and the sections pointed to by words 0x03-0x0E (a pointer or
// a length of 0 or 0xFFFF names no section). The checksum word is what
// makes this sum plus itself EEPROMSum. word reads one word; when it
// reports false (a read failed) the sum stops there, and the caller has the
// error.
func EEPROMWordSum(word func(i int) (uint16, bool)) uint16 {
	var sum uint16
	for i := 0; i < EEPROMChecksum; i++ {
		v, ok := word(i)
		if !ok {
			return sum
		}
		sum += v
	}
	for p := EEPROMPCIeAnalogPtr; p < EEPROMFirmwarePtr; p++ {
		v, ok := word(p)
		if !ok {
			return sum
		}
		ptr := int(v)
		if ptr == 0 || ptr == 0xFFFF {
			continue
		}
		v, ok = word(ptr)
		if !ok {
			return sum
		}
		length := int(v)
		if length == 0 || length == 0xFFFF {
			continue
		}
		for j := ptr + 1; j <= ptr+length; j++ {
			v, ok := word(j)
			if !ok {
				return sum
			}
			sum += v
		}
	}
	return sum
}

// Software/firmware semaphores (datasheet 8.2.3.2.5, 10.5.4 "shared
// resources"): SWSM.SMBI, then SW_FW_SYNC's software bit of the resource.
const (
	SWSM       = 0x10140
	FWSM       = 0x10148
	SW_FW_SYNC = 0x10160

	SWSM_SMBI    = 1 << 0 // software semaphore: reads 1 once taken
	SWSM_SWESMBI = 1 << 1 // software EEPROM semaphore

	SW_FW_SYNC_SW_EEP  = 1 << 0 // EEPROM, software
	SW_FW_SYNC_SW_PHY0 = 1 << 1 // PHY 0 (port 0's SFP I2C bus), software
	SW_FW_SYNC_SW_PHY1 = 1 << 2 // PHY 1, software
	SW_FW_SYNC_FW_EEP  = 1 << 5 // the firmware's bits are the software ones << 5
)

// I2C interface to the SFP+ module (datasheet 8.2.3.1.4 I2CCTL; bit-banged
// by software, as Linux's ixgbe_phy.c does).
const (
	I2CCTL = 0x00028

	I2CCTL_CLK_IN   = 1 << 0 // SCL as the bus sees it
	I2CCTL_CLK_OUT  = 1 << 1 // SCL driven by software (1 releases)
	I2CCTL_DATA_IN  = 1 << 2 // SDA as the bus sees it
	I2CCTL_DATA_OUT = 1 << 3 // SDA driven by software (1 releases; open drain)
)

// SFP+ module EEPROM (SFF-8472 rev. 12, section 4 and table 4-1; cited from
// memory): two-wire address 0xA0, bytes of interest.
const (
	SFPAddr          = 0xA0 // module serial ID EEPROM (write address; read is 0xA1)
	SFPIdentifier    = 0    // 0x03: SFP or SFP+
	SFP10GCompliance = 3    // bit 4 10GBASE-SR, bit 5 10GBASE-LR, bit 6 LRM, bit 7 ER
	SFP1GCompliance  = 6    // bit 0 1000BASE-SX, 1 LX, 2 CX, 3 1000BASE-T
	SFPCableTech     = 8    // bit 2 passive cable, bit 3 active cable
	SFPVendorName    = 20   // 16 ASCII bytes, space padded
	SFPVendorOUI     = 37   // 3 bytes
	SFPVendorPN      = 40   // 16 ASCII bytes

	SFPIDSFP        = 0x03
	SFP10GBaseSR    = 1 << 4
	SFP10GBaseLR    = 1 << 5
	SFP10GBaseLRM   = 1 << 6
	SFP10GBaseER    = 1 << 7
	SFPCablePassive = 1 << 2
	SFPCableActive  = 1 << 3
)

// Statistics registers Linux's ixgbe_update_stats reads on the 82599
// (datasheet 8.2.3.23), beyond those in regs.go. All clear on read.
const (
	MLFC = 0x04034 // MAC Local Fault Count
	MRFC = 0x04038 // MAC Remote Fault Count
	XEC  = 0x04120 // XSUM Error Count: receive IP/TCP/UDP checksum errors
)

// RNBC returns Receive No Buffers Count of packet buffer n (0..7, 0x03FC0 + 4n).
func RNBC(n int) uint32 { return 0x03FC0 + 4*uint32(n) }

// PXONTXC and PXOFFTXC return priority n's XON/XOFF Transmitted Count
// (0..7; 0x03F00 + 4n and 0x03F20 + 4n).
func PXONTXC(n int) uint32  { return 0x03F00 + 4*uint32(n) }
func PXOFFTXC(n int) uint32 { return 0x03F20 + 4*uint32(n) }

// PXONRXCNT and PXOFFRXCNT return priority n's XON/XOFF Received Count
// (0..7; 0x04140 + 4n and 0x04160 + 4n; the 82598 had them at 0x0CF00).
func PXONRXCNT(n int) uint32  { return 0x04140 + 4*uint32(n) }
func PXOFFRXCNT(n int) uint32 { return 0x04160 + 4*uint32(n) }
