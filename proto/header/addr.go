package header

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// MAC is an IEEE 802 MAC-48 address.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats the address as six colon-separated lower-case hex pairs.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var buf [17]byte
	for i, b := range m {
		if i > 0 {
			buf[3*i-1] = ':'
		}
		buf[3*i] = hex[b>>4]
		buf[3*i+1] = hex[b&0xf]
	}
	return string(buf[:])
}

// IsBroadcast reports whether m is the all-ones broadcast address.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether m is a group address: the I/G bit, the least
// significant bit of the first octet, is set (IEEE 802-2014 §8.2). The
// broadcast address is multicast too.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// ParseMAC parses six hex pairs separated by ':' or '-'.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("header: bad MAC address %q: want 6 hex pairs like 02:00:00:00:00:01", s)
	}
	for i := range m {
		if i > 0 && s[3*i-1] != ':' && s[3*i-1] != '-' {
			return m, fmt.Errorf("header: bad MAC address %q: separator must be ':' or '-'", s)
		}
		v, err := strconv.ParseUint(s[3*i:3*i+2], 16, 8)
		if err != nil {
			return m, fmt.Errorf("header: bad MAC address %q: %w", s, err)
		}
		m[i] = byte(v)
	}
	return m, nil
}

// IPv4Addr is an IPv4 address in network byte order.
type IPv4Addr [4]byte

// Well-known IPv4 addresses.
var (
	IPv4Any       = IPv4Addr{0, 0, 0, 0}
	IPv4Broadcast = IPv4Addr{255, 255, 255, 255}
)

// String formats the address in dotted decimal.
func (a IPv4Addr) String() string {
	var buf [15]byte
	b := buf[:0]
	for i, v := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return string(b)
}

// Uint32 returns the address as a host integer (a.b.c.d → a<<24|…|d).
func (a IPv4Addr) Uint32() uint32 { return binary.BigEndian.Uint32(a[:]) }

// IPv4AddrFromUint32 is the inverse of Uint32.
func IPv4AddrFromUint32(v uint32) IPv4Addr {
	var a IPv4Addr
	binary.BigEndian.PutUint32(a[:], v)
	return a
}

// Netip converts to a net/netip address.
func (a IPv4Addr) Netip() netip.Addr { return netip.AddrFrom4(a) }

// IPv4AddrFromNetip converts from net/netip; ok is false unless addr is an
// IPv4 (or IPv4-mapped IPv6) address.
func IPv4AddrFromNetip(addr netip.Addr) (IPv4Addr, bool) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return IPv4Addr{}, false
	}
	return addr.As4(), true
}

// ParseIPv4Addr parses dotted decimal.
func ParseIPv4Addr(s string) (IPv4Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is4() {
		return IPv4Addr{}, fmt.Errorf("header: bad IPv4 address %q: want dotted decimal like 192.0.2.1", s)
	}
	return addr.As4(), nil
}

// IsUnspecified reports whether a is 0.0.0.0.
func (a IPv4Addr) IsUnspecified() bool { return a == IPv4Any }

// IsBroadcast reports whether a is the limited broadcast 255.255.255.255.
func (a IPv4Addr) IsBroadcast() bool { return a == IPv4Broadcast }

// IsMulticast reports whether a is in 224.0.0.0/4 (RFC 5771).
func (a IPv4Addr) IsMulticast() bool { return a[0]&0xf0 == 0xe0 }

// IsLoopback reports whether a is in 127.0.0.0/8 (RFC 1122 §3.2.1.3).
func (a IPv4Addr) IsLoopback() bool { return a[0] == 127 }
