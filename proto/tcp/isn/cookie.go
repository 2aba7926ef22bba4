package isn

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"time"
)

// SYN cookies (RFC 4987 section 3.6). A listener under SYN flood answers a
// SYN without keeping state, choosing as its ISS a cookie that encodes what
// it needs to rebuild the connection when the peer's ACK (ack number =
// cookie + 1) comes back: a time counter, an index into MSSTable, and a MAC
// over the 4-tuple, the counter and the index. The layout is Linux's
// (secure_tcp_syn_cookie in net/ipv4/syncookies.c):
//
//	cookie = H0(tuple) + peerISN + (count << 24) + low24      (mod 2^32)
//
// with count = Unix time / 64 s (RFC 4987's "slowly incrementing timer",
// 64 s like Linux's counter), its low 8 bits landing in the top 8 bits. H0
// and H1 are SipHash-2-4 under two independent 128-bit secrets. The low 24
// bits differ from Linux's in one respect: Linux uses (H1(tuple, count) +
// mssIndex) mod 2^24, which leaves the index malleable (a cookie with a low
// bit flipped, or an ACK whose sequence number is off by one, passes with a
// neighbouring MSS index). Here
//
//	low24 = H1(tuple, count, mssIndex) mod 2^22 << 2  |  mssIndex
//
// so the 22-bit MAC covers the index too and any altered bit, 4-tuple or
// peer ISN is refused, while a random guess still passes with probability
// 2^-22 per epoch tried, as with Linux's 4/2^24.
//
// Because count goes into H1, the MAC's key effectively rotates every 64 s
// (the second secret is "rotated" by the counter, without coordination):
// Check accepts the current epoch and the previous one (a cookie lives 64 to
// 128 s), as Linux's MAX_SYNCOOKIE_AGE = 2 does. The top 8 bits carry count
// mod 256, so the epoch a cookie was made in is recovered exactly.
//
// What the cookie cannot hold, the peer's window scale and SACK-permitted,
// can ride in the low bits of the TSval when the peer offered timestamps
// (EncodeTSOpts, CookieTSval, DecodeTSOpts); without timestamps a
// cookie-made connection has neither (RFC 4987 section 3.6 notes this loss).
//
// Counting failures is the caller's.

// MSSTable is the MSS values a cookie can encode (Linux's IPv4 msstab): the
// common MSS of Ethernet (1460), of tunnels and PPPoE (1440, 1300), and the
// RFC 9293 default (536).
var MSSTable = [4]uint16{536, 1300, 1440, 1460}

// MSSIndex returns the index in MSSTable of the largest MSS not above mss,
// or 0 (536) when mss is below every entry, as Linux does.
func MSSIndex(mss int) int {
	for i := len(MSSTable) - 1; i > 0; i-- {
		if mss >= int(MSSTable[i]) {
			return i
		}
	}
	return 0
}

const (
	cookieBits = 24
	cookieMask = 1<<cookieBits - 1
	// mssBits holds an MSSTable index in the low bits of a cookie.
	mssBits = 2
	mssMask = 1<<mssBits - 1
	// cookieEpoch is the period of the cookie time counter.
	cookieEpoch = 64 // seconds
	// maxCookieAge is how many epochs a cookie is valid: the current one
	// and the previous one.
	maxCookieAge = 2
)

// Cookies makes and checks SYN cookies. It is safe for concurrent use and
// does not allocate.
type Cookies struct {
	k [2]key
}

// NewCookies returns Cookies using the two 128-bit secrets: secrets[0]
// keys the time-independent hash H0, secrets[1] the per-epoch MAC H1.
func NewCookies(secrets [2][16]byte) *Cookies {
	return &Cookies{k: [2]key{keyOf(secrets[0]), keyOf(secrets[1])}}
}

// NewRandomCookies returns Cookies with secrets read from crypto/rand.
func NewRandomCookies() *Cookies {
	var s [2][16]byte
	rand.Read(s[0][:])
	rand.Read(s[1][:])
	return NewCookies(s)
}

// cookieCount is the time counter at now.
func cookieCount(now time.Time) uint32 { return uint32(now.Unix() / cookieEpoch) }

func (c *Cookies) hash(i int, local, remote netip.AddrPort, extra uint32) uint32 {
	return uint32(tupleHash(c.k[i], local.Addr().As16(), remote.Addr().As16(), local.Port(), remote.Port(), extra))
}

// low24 is the low 24 bits of a cookie made in epoch count with mssIndex.
func (c *Cookies) low24(local, remote netip.AddrPort, count uint32, mssIndex uint32) uint32 {
	// H1's input: the counter, and the index in bits above any counter
	// value reachable in practice (2^30 epochs of 64 s).
	mac := c.hash(1, local, remote, count&(1<<30-1)|mssIndex<<30)
	return (mac<<mssBits | mssIndex) & cookieMask
}

// Make returns the cookie to use as the ISS of the SYN-ACK answering a SYN
// from remote to local with sequence number peerISN, encoding mssIndex
// (an index in MSSTable, from MSSIndex; it panics when out of range) and
// the time counter at now.
func (c *Cookies) Make(local, remote netip.AddrPort, peerISN uint32, mssIndex int, now time.Time) (iss uint32) {
	if mssIndex < 0 || mssIndex >= len(MSSTable) {
		panic(fmt.Sprintf("isn: MSS index %d out of range", mssIndex))
	}
	count := cookieCount(now)
	return c.hash(0, local, remote, 0) + peerISN + count<<cookieBits + c.low24(local, remote, count, uint32(mssIndex))
}

// Check validates the cookie carried by an ACK from remote to local:
// peerISN is the ACK's sequence number minus 1 (the peer's ISN, since the
// SYN used one) and cookie is its acknowledgment number minus 1. It returns
// the MSSTable index and true when the cookie was made by Make for this
// 4-tuple and peerISN in the epoch of now or the one before; otherwise 0,
// false.
func (c *Cookies) Check(local, remote netip.AddrPort, peerISN uint32, cookie uint32, now time.Time) (mssIndex int, ok bool) {
	count := cookieCount(now)
	v := cookie - c.hash(0, local, remote, 0) - peerISN
	diff := (count - v>>cookieBits) & (1<<(32-cookieBits) - 1)
	if diff >= maxCookieAge {
		return 0, false
	}
	idx := v & mssMask
	if idx >= uint32(len(MSSTable)) || v&cookieMask != c.low24(local, remote, count-diff, idx) {
		return 0, false
	}
	return int(idx), true
}

// Timestamp option bits of a cookie connection (Linux's cookie_init_timestamp
// and cookie_timestamp_decode): the low TSOptBits bits of the SYN-ACK's TSval,
// echoed back in the ACK's TSecr, carry
//
//	bits 0-3  the peer's window scale shift, or NoWScale (15) if the peer sent
//	          no Window Scale option
//	bit 4     the peer sent SACK-permitted
//	bit 5     reserved (Linux: ECN)
const (
	TSOptBits = 6
	TSOptMask = 1<<TSOptBits - 1
	NoWScale  = 0xf
	tsOptSACK = 1 << 4
)

// EncodeTSOpts returns the TSOptBits-bit field for the peer's window scale
// (NoWScale when it sent none; other values above 14 are taken as 14, RFC
// 7323 section 2.3) and SACK-permitted.
func EncodeTSOpts(wscale uint8, sackOK bool) uint32 {
	if wscale != NoWScale {
		wscale = min(wscale, 14)
	}
	v := uint32(wscale)
	if sackOK {
		v |= tsOptSACK
	}
	return v
}

// DecodeTSOpts reads the field from an ACK's TSecr (only its low TSOptBits
// bits are looked at): the peer's window scale shift (0-14) with wscaleOK
// true, or NoWScale with wscaleOK false when the peer sent no Window Scale
// option; and whether it sent SACK-permitted. The bits are not covered by
// the cookie's MAC: a peer can only change its own options with them.
func DecodeTSOpts(tsecr uint32) (wscale uint8, wscaleOK bool, sackOK bool) {
	w := uint8(tsecr & 0xf)
	return w, w <= 14, tsecr&tsOptSACK != 0
}

// CookieTSval returns the TSval to send in a cookie SYN-ACK: tsval with its
// low TSOptBits bits replaced by opts, moved back by 2^TSOptBits when that
// would put it after tsval, so that later TSvals are never below it (the
// timestamp clock of RFC 7323 section 5.4 must not run backwards).
func CookieTSval(tsval, opts uint32) uint32 {
	ts := tsval&^TSOptMask | opts&TSOptMask
	if int32(ts-tsval) > 0 {
		ts -= 1 << TSOptBits
	}
	return ts
}
