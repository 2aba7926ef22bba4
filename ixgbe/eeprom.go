package ixgbe

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// EEPROM access through EERD (datasheet 8.2.3.2.2), under the software /
// firmware semaphore (8.2.3.2.5, 10.5.4), as Linux's ixgbe probe does it:
// validate the checksum (words 0x00-0x3F plus the sections pointed to by
// words 0x03-0x0E sum to 0xBABA; ixgbe_validate_eeprom_checksum_generic),
// then read the port's MAC address from its LAN core module, the PBA number
// and the eTrack ID. The EEPROM map is regs/nvm.go's; sections and word
// meanings are cited from memory (docs/NOTES.md).

// ErrEEPROMChecksum is returned (wrapped) by New when the EEPROM's checksum
// word does not make its words sum to 0xBABA: the NVM is corrupt and the
// device's configuration (loaded from it at reset) is not to be trusted.
// Linux's ixgbe refuses such a device too.
var ErrEEPROMChecksum = errors.New("ixgbe: EEPROM checksum is not valid")

// readEEPROM fills n.info from the EEPROM and checks the checksum.
func (n *NIC) readEEPROM() error {
	if err := n.acquireSWFW(regs.SW_FW_SYNC_SW_EEP); err != nil {
		return err
	}
	defer n.releaseSWFW(regs.SW_FW_SYNC_SW_EEP)
	cache := map[int]uint16{}
	var rerr error
	word := func(i int) uint16 {
		if v, ok := cache[i]; ok {
			return v
		}
		v, err := n.eerd(i)
		if err != nil && rerr == nil {
			rerr = err
		}
		cache[i] = v
		return v
	}
	sum := regs.EEPROMWordSum(func(i int) (uint16, bool) { return word(i), rerr == nil })
	stored := word(regs.EEPROMChecksum)
	if rerr != nil {
		return rerr
	}
	n.info.EEPROMChecksum = stored
	if want := uint16(regs.EEPROMSum) - sum; stored != want {
		return fmt.Errorf("ixgbe: %s: checksum word 0x3F is %#04x, the words sum to %#04x+%#04x, not 0xBABA (datasheet 6.3, EEPROM checksum): %w",
			n.name, stored, sum, stored, ErrEEPROMChecksum)
	}

	// The port's LAN core module: words 1-3 are its MAC address.
	lan := int(n.dev.Read32(regs.STATUS)&regs.STATUS_LAN_ID) >> 2
	if core := int(word(regs.EEPROMCore0Ptr + lan&1)); core != 0 && core != 0xFFFF {
		mac := make(net.HardwareAddr, 6)
		for k := 0; k < 3; k++ {
			w := word(core + 1 + k)
			mac[2*k], mac[2*k+1] = byte(w), byte(w>>8)
		}
		n.info.PermanentMAC = mac
	}
	n.info.PBA = readPBA(word)
	n.info.ETrackID = uint32(word(regs.EEPROMVersionH))<<16 | uint32(word(regs.EEPROMVersionL))
	return rerr
}

// readPBA decodes the printed board assembly number (Linux's
// ixgbe_read_pba_string_generic): with the guard 0xFAFA in word 0x15, word
// 0x16 points to a block of its length in words and the string, two
// characters per word; otherwise the two words are the number in the old
// format, printed "XXXXXX-0XX".
func readPBA(word func(int) uint16) string {
	w0, w1 := word(regs.EEPROMPBA0), word(regs.EEPROMPBA1)
	if w0 != regs.EEPROMPBAGuard {
		return fmt.Sprintf("%04x%02x-0%02x", w0, w1>>8, w1&0xFF)
	}
	if w1 == 0 || w1 == 0xFFFF {
		return ""
	}
	length := int(word(int(w1)))
	if length == 0 || length == 0xFFFF || length > 32 {
		return ""
	}
	b := make([]byte, 0, 2*(length-1))
	for i := 1; i < length; i++ {
		w := word(int(w1) + i)
		b = append(b, byte(w>>8), byte(w))
	}
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// eerd reads EEPROM word i through EERD.
func (n *NIC) eerd(i int) (uint16, error) {
	n.dev.Write32(regs.EERD, uint32(i)<<regs.EERD_ADDR_SHIFT|regs.EERD_START)
	if err := n.waitSet(regs.EERD, regs.EERD_DONE, fmt.Sprintf("EERD.DONE (bit 1) reading EEPROM word %#x", i), "8.2.3.2.2"); err != nil {
		return 0, err
	}
	return uint16(n.dev.Read32(regs.EERD) >> regs.EERD_DATA_SHIFT), nil
}

// acquireSWFW takes the software/firmware semaphore of a shared resource
// (SW_FW_SYNC bit sw, datasheet 10.5.4; Linux's ixgbe_acquire_swfw_sync):
// take SWSM.SMBI and SWSM.SWESMBI, check that neither software nor firmware
// holds the resource, set its software bit, and give SWSM back.
func (n *NIC) acquireSWFW(sw uint32) error {
	fw := sw * regs.SW_FW_SYNC_FW_EEP // firmware bits are the software ones << 5
	start := n.clock.Now()
	for {
		if err := n.getSWSM(); err != nil {
			return err
		}
		sync := n.dev.Read32(regs.SW_FW_SYNC)
		if sync&(sw|fw) == 0 {
			n.dev.Write32(regs.SW_FW_SYNC, sync|sw)
			n.putSWSM()
			return nil
		}
		n.putSWSM()
		if n.clock.Now().Sub(start) >= pollTimeout {
			return fmt.Errorf("ixgbe: %s: timeout after %v waiting for SW_FW_SYNC %#x (held: %#x) (datasheet 10.5.4)", n.name, pollTimeout, sw, sync)
		}
		n.clock.Sleep(5 * time.Millisecond)
	}
}

// releaseSWFW gives back what acquireSWFW took.
func (n *NIC) releaseSWFW(sw uint32) {
	if n.getSWSM() != nil {
		return
	}
	n.dev.Write32(regs.SW_FW_SYNC, n.dev.Read32(regs.SW_FW_SYNC)&^sw)
	n.putSWSM()
}

// getSWSM takes the SWSM semaphores: SMBI is taken by the read that
// returns it clear (8.2.3.2.5), SWESMBI by writing it and reading it back.
func (n *NIC) getSWSM() error {
	start := n.clock.Now()
	for n.dev.Read32(regs.SWSM)&regs.SWSM_SMBI != 0 {
		if n.clock.Now().Sub(start) >= pollTimeout {
			return fmt.Errorf("ixgbe: %s: timeout after %v waiting for SWSM.SMBI (bit 0) (datasheet 8.2.3.2.5)", n.name, pollTimeout)
		}
		n.clock.Sleep(50 * time.Microsecond)
	}
	for {
		n.dev.Write32(regs.SWSM, n.dev.Read32(regs.SWSM)|regs.SWSM_SWESMBI)
		if n.dev.Read32(regs.SWSM)&regs.SWSM_SWESMBI != 0 {
			return nil
		}
		if n.clock.Now().Sub(start) >= pollTimeout {
			n.putSWSM()
			return fmt.Errorf("ixgbe: %s: timeout after %v waiting for SWSM.SWESMBI (bit 1) (datasheet 8.2.3.2.5)", n.name, pollTimeout)
		}
		n.clock.Sleep(50 * time.Microsecond)
	}
}

func (n *NIC) putSWSM() {
	n.dev.Write32(regs.SWSM, n.dev.Read32(regs.SWSM)&^(regs.SWSM_SMBI|regs.SWSM_SWESMBI))
}
