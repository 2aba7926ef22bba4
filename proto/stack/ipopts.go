package stack

import (
	"encoding/binary"
	"time"

	"github.com/verinic/verinic/proto/header"
)

// IPv4 option types this host interprets (RFC 791 3.1; IANA ip-parameters).
const (
	optEOL       = 0
	optNOP       = 1
	optRR        = 7    // Record Route
	optTimestamp = 0x44 // Internet Timestamp
	optLSRR      = 0x83 // Loose Source and Record Route
	optSSRR      = 0x89 // Strict Source and Record Route

	tsOnly    = 0 // timestamp flags (RFC 791): timestamps only
	tsAndAddr = 1 // address and timestamp
	tsPrespec = 3 // timestamps for prespecified addresses
)

// optionProblem checks the options of ip (RFC 791 3.1) as Linux's
// ip_options_compile does and returns the offset in the header of the first
// octet in error, for an ICMP Parameter Problem pointer (RFC 792; RFC 1122
// 3.2.2.5), or 0 when the options are well formed: a length below 2 or past
// the header points at the option's type; a route or timestamp option
// shorter than its fixed part at its length; a pointer below its minimum
// (4 for routes, 5 for timestamps), or one leaving a partial slot, at the
// pointer; an unknown timestamp flag or an overflow count about to wrap at
// the flag octet; a second Record Route or Timestamp option at its type.
// Options this host does not know are skipped (RFC 1122 3.2.1.8).
func optionProblem(ip header.IPv4) int {
	hl := ip.HeaderLen()
	var seenRR, seenTS bool
	for i := header.IPv4MinHeaderLen; i < hl; {
		typ := ip[i]
		switch typ {
		case optEOL:
			return 0
		case optNOP:
			i++
			continue
		}
		if i+2 > hl {
			return i
		}
		l := int(ip[i+1])
		if l < 2 || i+l > hl {
			return i
		}
		switch typ {
		case optRR, optLSRR, optSSRR:
			if typ == optRR && seenRR {
				return i
			}
			seenRR = seenRR || typ == optRR
			switch ptr := int(ip[i+2]); {
			case l < 3:
				return i + 1
			case ptr < 4:
				return i + 2
			case ptr <= l && ptr+3 > l:
				return i + 2
			}
		case optTimestamp:
			if seenTS {
				return i
			}
			seenTS = true
			if l < 4 {
				return i + 1
			}
			ptr, flag := int(ip[i+2]), ip[i+3]&0xf
			switch {
			case ptr < 5:
				return i + 2
			case flag != tsOnly && flag != tsAndAddr && flag != tsPrespec:
				return i + 3
			case ptr <= l && ptr+3 > l, ptr <= l && flag != tsOnly && ptr+7 > l:
				return i + 2
			case ptr > l && flag != tsPrespec && ip[i+3]>>4 == 15:
				return i + 3 // the overflow count cannot grow (RFC 791)
			}
		}
		i += l
	}
	return 0
}

// msSinceMidnightUT is an ICMP or IP-option timestamp: milliseconds since
// midnight UT (RFC 791 3.1, RFC 792).
func msSinceMidnightUT(now time.Time) uint32 {
	u := now.UTC()
	return uint32(u.Sub(u.Truncate(24*time.Hour)) / time.Millisecond)
}

// echoOptions writes into dst the options an echo reply to ip carries and
// returns their length: its Record Route and Timestamp options, updated
// with this host as the request arrived and again as the reply leaves, so
// that the route and times cover the whole round trip (RFC 1122 3.2.2.6;
// Linux's ip_options_compile on input and ip_options_echo on output). ip's
// options are well formed (optionProblem). Other options are not echoed:
// this host ignores source-route options and does not reverse them.
func echoOptions(dst []byte, ip header.IPv4, self header.IPv4Addr, now time.Time) int {
	hl := ip.HeaderLen()
	n := 0
	stamp := msSinceMidnightUT(now)
	for i := header.IPv4MinHeaderLen; i < hl; {
		typ := ip[i]
		if typ == optEOL {
			break
		}
		if typ == optNOP {
			i++
			continue
		}
		l := int(ip[i+1])
		if typ == optRR || typ == optTimestamp {
			o := dst[n : n+l]
			copy(o, ip[i:i+l])
			n += l
			for pass := 0; pass < 2; pass++ { // as received, then as sent
				if typ == optRR {
					recordRoute(o, self)
				} else {
					timestamp(o, self, stamp, pass == 0)
				}
			}
		}
		i += l
	}
	return n
}

// recordRoute adds self to a Record Route option with room (RFC 791).
func recordRoute(o []byte, self header.IPv4Addr) {
	ptr := int(o[2])
	if ptr+3 > len(o) {
		return // full: nothing is recorded
	}
	copy(o[ptr-1:], self[:])
	o[2] += 4
}

// timestamp adds self's timestamp to a Timestamp option (RFC 791): a slot
// if there is room, else (on the way in) one more in the overflow count.
func timestamp(o []byte, self header.IPv4Addr, stamp uint32, in bool) {
	ptr, flag := int(o[2]), o[3]&0xf
	switch {
	case flag == tsOnly && ptr+3 <= len(o):
		binary.BigEndian.PutUint32(o[ptr-1:], stamp)
		o[2] += 4
	case flag == tsAndAddr && ptr+7 <= len(o):
		copy(o[ptr-1:], self[:])
		binary.BigEndian.PutUint32(o[ptr+3:], stamp)
		o[2] += 8
	case flag == tsPrespec && ptr+7 <= len(o):
		if header.IPv4Addr(o[ptr-1:ptr+3]) == self {
			binary.BigEndian.PutUint32(o[ptr+3:], stamp)
			o[2] += 8
		}
	case in && flag != tsPrespec && ptr > len(o) && o[3]>>4 < 15:
		o[3] += 0x10
	}
}
