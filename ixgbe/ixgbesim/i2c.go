package ixgbesim

import (
	"sync"

	"github.com/verinic/verinic/ixgbe/regs"
)

// The SFP+ cage's two-wire bus (datasheet 8.2.3.1.4 I2CCTL; SFF-8472 for the
// module's serial ID EEPROM; both cited from memory, docs/NOTES.md).
//
// Software bit-bangs the bus through I2CCTL: CLK_OUT and DATA_OUT drive SCL
// and SDA (open drain: 1 releases the line), CLK_IN and DATA_IN read them
// back. The module answers at two-wire address 0xA0 (SFF-8472's A0h page,
// 256 bytes): a write of one byte sets its address pointer, a read returns
// bytes from the pointer on, the pointer advancing after each byte the
// master acknowledges. An empty cage answers nothing (every address byte is
// NACKed). The model keeps no timing: a driver's delays between edges are
// its own business.

// SFPKind is the module a simulated NIC's cage holds.
type SFPKind int

const (
	SFPShortReach   SFPKind = iota // 10GBASE-SR optics (the default)
	SFPLongReach                   // 10GBASE-LR optics
	SFPDirectAttach                // passive direct-attach copper cable
	SFPAbsent                      // empty cage
)

// SFPModule configures the module (Config.SFP).
type SFPModule struct {
	Kind       SFPKind
	Vendor     string // default "VERINIC SIM"
	PartNumber string // default from Kind
}

// sfpEEPROM builds the module's A0h page (SFF-8472 table 4-1).
func sfpEEPROM(m SFPModule) *[256]byte {
	if m.Kind == SFPAbsent {
		return nil
	}
	var e [256]byte
	e[regs.SFPIdentifier] = regs.SFPIDSFP
	e[1] = 0x04 // extended identifier: serial ID defined by two-wire interface
	pn := ""
	switch m.Kind {
	case SFPShortReach:
		e[2] = 0x07 // connector: LC
		e[regs.SFP10GCompliance] = regs.SFP10GBaseSR
		pn = "SIM-SFP-10G-SR"
	case SFPLongReach:
		e[2] = 0x07
		e[regs.SFP10GCompliance] = regs.SFP10GBaseLR
		pn = "SIM-SFP-10G-LR"
	case SFPDirectAttach:
		e[2] = 0x21 // connector: copper pigtail
		e[regs.SFPCableTech] = regs.SFPCablePassive
		pn = "SIM-SFP-H10GB-CU3M"
	}
	vendor := m.Vendor
	if vendor == "" {
		vendor = "VERINIC SIM"
	}
	if m.PartNumber != "" {
		pn = m.PartNumber
	}
	pad := func(at int, s string) {
		for i := 0; i < 16; i++ {
			c := byte(' ')
			if i < len(s) {
				c = s[i]
			}
			e[at+i] = c
		}
	}
	pad(regs.SFPVendorName, vendor)
	pad(regs.SFPVendorPN, pn)
	e[regs.SFPVendorOUI], e[regs.SFPVendorOUI+1], e[regs.SFPVendorOUI+2] = 0x00, 0x1B, 0x21
	var sum byte // CC_BASE: low byte of the sum of bytes 0-62 (SFF-8472 8.8)
	for _, b := range e[:63] {
		sum += b
	}
	e[63] = sum
	return &e
}

// i2c states.
const (
	i2cIdle   = iota // waiting for a START
	i2cAddr          // receiving the address byte
	i2cOffset        // receiving the address pointer
	i2cWrite         // receiving data bytes (ACKed and dropped: the A0h page is read-only)
	i2cRead          // sending bytes
	i2cIgnore        // not addressed, or the master NACKed: wait for STOP or START
)

// i2cBus is the bus and the module on it.
type i2cBus struct {
	mu     sync.Mutex
	eeprom *[256]byte // nil: empty cage
	scl    bool       // master's SCL output (true: released, high)
	sdaM   bool       // master's SDA output
	sdaS   bool       // slave's SDA output (false: pulling low)
	state  int
	slot   int  // SCL pulses so far in the current byte (0..9)
	shift  byte // byte being received or sent
	ack    bool // the byte just received is acknowledged
	mack   bool // the master acknowledged the byte just sent
	ptr    byte // module address pointer
}

func (b *i2cBus) init(m SFPModule) {
	b.eeprom = sfpEEPROM(m)
	b.scl, b.sdaM, b.sdaS = true, true, true
}

// read composes I2CCTL: the outputs as written, the inputs as the bus is.
func (b *i2cBus) read() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var v uint32
	if b.scl {
		v |= regs.I2CCTL_CLK_OUT | regs.I2CCTL_CLK_IN
	}
	if b.sdaM {
		v |= regs.I2CCTL_DATA_OUT
	}
	if b.sdaM && b.sdaS {
		v |= regs.I2CCTL_DATA_IN
	}
	return v
}

// write applies new SCL and SDA outputs: START and STOP are SDA edges while
// SCL is high; bits are sampled on SCL's rising edge; the slave changes its
// SDA output after SCL's falling edge.
func (b *i2cBus) write(v uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	scl, sda := v&regs.I2CCTL_CLK_OUT != 0, v&regs.I2CCTL_DATA_OUT != 0
	oldBus := b.sdaM && b.sdaS
	if b.scl && scl && sda != b.sdaM {
		b.sdaM = sda
		switch newBus := b.sdaM && b.sdaS; {
		case oldBus && !newBus:
			b.start()
		case !oldBus && newBus:
			b.stop()
		}
	}
	b.sdaM = sda
	switch {
	case !b.scl && scl:
		b.scl = true
		b.rise(b.sdaM && b.sdaS)
	case b.scl && !scl:
		b.scl = false
		b.fall()
	}
}

func (b *i2cBus) start() {
	b.state, b.slot, b.shift, b.sdaS = i2cAddr, 0, 0, true
}

func (b *i2cBus) stop() {
	b.state, b.slot, b.sdaS = i2cIdle, 0, true
}

func (b *i2cBus) receiving() bool {
	return b.state == i2cAddr || b.state == i2cOffset || b.state == i2cWrite
}

// rise samples SDA.
func (b *i2cBus) rise(bit bool) {
	if b.state == i2cIdle || b.state == i2cIgnore {
		return
	}
	if b.slot < 8 && b.receiving() {
		b.shift <<= 1
		if bit {
			b.shift |= 1
		}
	}
	if b.slot == 8 && b.state == i2cRead {
		b.mack = !bit
	}
	b.slot++
}

// fall moves the slave's SDA output for the next bit.
func (b *i2cBus) fall() {
	if b.state == i2cIdle || b.state == i2cIgnore {
		return
	}
	if b.receiving() {
		switch b.slot {
		case 8: // eight bits in: acknowledge?
			b.ack = b.eeprom != nil && (b.state != i2cAddr || b.shift&^1 == regs.SFPAddr)
			b.sdaS = !b.ack
		case 9: // acknowledge clocked: act on the byte
			b.sdaS = true
			b.slot = 0
			if !b.ack {
				b.state = i2cIgnore
				return
			}
			switch b.state {
			case i2cAddr:
				if b.shift&1 == 1 {
					b.state = i2cRead
					b.shift = b.eeprom[b.ptr]
					b.sdaS = b.shift&0x80 != 0
				} else {
					b.state = i2cOffset
				}
			case i2cOffset:
				b.ptr = b.shift
				b.state = i2cWrite
			}
		}
		return
	}
	// i2cRead
	switch {
	case b.slot < 8:
		b.sdaS = b.shift&(0x80>>b.slot) != 0
	case b.slot == 8:
		b.sdaS = true // the master acknowledges
	default:
		b.slot = 0
		if !b.mack {
			b.state = i2cIgnore // NACK: the master is done
			return
		}
		b.ptr++
		b.shift = b.eeprom[b.ptr]
		b.sdaS = b.shift&0x80 != 0
	}
}

// Page returns the module's A0h page as the simulated bus serves it (nil
// for an empty cage).
func (m SFPModule) Page() []byte {
	e := sfpEEPROM(m)
	if e == nil {
		return nil
	}
	return append([]byte(nil), e[:]...)
}
