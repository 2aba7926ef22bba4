package ixgbesim

import (
	"errors"
	"sync/atomic"

	"github.com/verinic/verinic/ixgbe/regs"
)

// The NVM (EEPROM) image and the EEPROM Read register (datasheet 6.2-6.4,
// 8.2.3.2.2; cited from memory, docs/NOTES.md).
//
// The image is what the 82599's EEPROM holds in the words a driver reads:
// pointers to the LAN core modules (0x09, 0x0A), whose words 1-3 are the
// port's MAC address (low byte first in each word); the PBA number (0x15,
// 0x16: the guard 0xFAFA and a pointer to a block of its length in words
// and the string, two characters per word, high byte first); the eTrack ID
// (0x2D low, 0x2E high); and the checksum word 0x3F, chosen so that words
// 0x00-0x3F plus every section pointed to by words 0x03-0x0E (a length
// word, then that many words) sum to 0xBABA (Linux's
// ixgbe_calc_eeprom_checksum_generic). At reset the device loads the MAC
// address of its port (STATUS.LAN_ID picks the core) into RAL[0]/RAH[0].
//
// EERD: software writes the word address (bits 15:2) with START (bit 0);
// the device reads the word and reports it in bits 31:16 with DONE
// (bit 1). The model completes the read at once; a driver polls DONE as
// on hardware.

// nvmWords is the size of the modelled image (words past it read 0xFFFF).
const nvmWords = 0x400

// Where the default image puts its sections.
const (
	nvmCore0  = 0x60
	nvmCore1  = 0x68
	nvmPBA    = 0x80
	nvmETrack = 0x80000546
	nvmPBAStr = "E66560-002"
)

// initNVM builds (or takes) the NIC's EEPROM image and the MAC address its
// port loads from it.
func (n *NIC) initNVM() error {
	if n.cfg.EEPROM != nil {
		if len(n.cfg.EEPROM) <= regs.EEPROMChecksum {
			return errors.New("EEPROM image shorter than its checksum word (0x3F)")
		}
		n.nvm = append([]uint16(nil), n.cfg.EEPROM...)
		if mac, ok := nvmMAC(n.nvm, n.cfg.LanID); ok {
			n.mac = mac
		}
		return nil
	}
	n.nvm = BuildEEPROM(n.mac, n.cfg.LanID)
	return nil
}

// BuildEEPROM returns a valid 82599 EEPROM image for a port at lanID with
// address mac (the other port gets mac with the last bit of its last byte
// flipped), with the PBA "E66560-002", eTrack ID 0x80000546 and a correct
// checksum. Tests change words of it and pass it as Config.EEPROM.
func BuildEEPROM(mac [6]byte, lanID int) []uint16 {
	img := make([]uint16, nvmWords)
	for i := range img {
		img[i] = 0xFFFF
	}
	for i := 0; i < regs.EEPROMChecksum; i++ {
		img[i] = 0
	}
	// Control words (6.3.1): something non-trivial for the checksum.
	img[0x00], img[0x01], img[0x02] = 0x3B00, 0x4420, 0x0C60
	for p := regs.EEPROMPCIeAnalogPtr; p <= regs.EEPROMFirmwarePtr; p++ {
		img[p] = 0xFFFF // no section
	}
	other := mac
	other[5] ^= 1
	macs := [2][6]byte{mac, other}
	if lanID&1 == 1 {
		macs = [2][6]byte{other, mac}
	}
	for core, at := range []int{nvmCore0, nvmCore1} {
		img[regs.EEPROMCore0Ptr+core] = uint16(at)
		m := macs[core]
		img[at] = 5 // section length: MAC (3 words) and 2 configuration words
		img[at+1] = uint16(m[0]) | uint16(m[1])<<8
		img[at+2] = uint16(m[2]) | uint16(m[3])<<8
		img[at+3] = uint16(m[4]) | uint16(m[5])<<8
		img[at+4], img[at+5] = 0x0001, 0x0100
	}
	img[regs.EEPROMPBA0] = regs.EEPROMPBAGuard
	img[regs.EEPROMPBA1] = nvmPBA
	s := nvmPBAStr
	img[nvmPBA] = uint16(1 + (len(s)+1)/2)
	for i := 0; i < len(s); i += 2 {
		w := uint16(s[i]) << 8
		if i+1 < len(s) {
			w |= uint16(s[i+1])
		}
		img[nvmPBA+1+i/2] = w
	}
	img[regs.EEPROMVersionL] = uint16(nvmETrack & 0xFFFF)
	img[regs.EEPROMVersionH] = uint16(nvmETrack >> 16)
	img[regs.EEPROMChecksum] = regs.EEPROMSum - EEPROMSum(img)
	return img
}

// EEPROMSum is the sum the checksum word completes to 0xBABA
// (regs.EEPROMWordSum over img; words past its end read 0xFFFF).
func EEPROMSum(img []uint16) uint16 {
	return regs.EEPROMWordSum(func(i int) (uint16, bool) {
		if i < len(img) {
			return img[i], true
		}
		return 0xFFFF, true
	})
}

// nvmMAC returns the MAC address of port lanID in img.
func nvmMAC(img []uint16, lanID int) ([6]byte, bool) {
	var m [6]byte
	p := regs.EEPROMCore0Ptr + lanID&1
	if p >= len(img) {
		return m, false
	}
	at := int(img[p])
	if at == 0 || at == 0xFFFF || at+3 >= len(img) {
		return m, false
	}
	for k := 0; k < 3; k++ {
		w := img[at+1+k]
		m[2*k], m[2*k+1] = byte(w), byte(w>>8)
	}
	return m, true
}

// writeEERD runs a read when START is written.
func (n *NIC) writeEERD(c *atomic.Uint32, v uint32) {
	if v&regs.EERD_START == 0 {
		storeMasked(c, v, regs.EERD_ADDR_MASK)
		return
	}
	addr := int(v&regs.EERD_ADDR_MASK) >> regs.EERD_ADDR_SHIFT
	data := uint16(0xFFFF)
	if addr < len(n.nvm) {
		data = n.nvm[addr]
	}
	c.Store(uint32(addr)<<regs.EERD_ADDR_SHIFT | regs.EERD_DONE | uint32(data)<<regs.EERD_DATA_SHIFT)
}

// readSWSM is the software semaphore (8.2.3.2.5): reading SMBI returns its
// value and sets it, so the first reader sees 0 and owns the semaphore
// until it writes 0. No firmware is modelled, so SWESMBI sticks when
// written and SW_FW_SYNC never has firmware bits.
func (n *NIC) readSWSM(c *atomic.Uint32) uint32 {
	return c.Or(regs.SWSM_SMBI)
}
