package header

// ErrorKind classifies a parse failure independently of the layer, so that a
// stack can count, say, every checksum failure with one errors.Is test.
type ErrorKind uint8

// Kinds of parse failures.
const (
	// KindTruncated: the bytes end before the format says they should.
	KindTruncated ErrorKind = iota + 1
	// KindMalformed: a field holds a value the format forbids.
	KindMalformed
	// KindChecksum: the checksum does not verify.
	KindChecksum
	// KindUnsupported: well-formed, but not a variant this package handles
	// (an ARP packet for another hardware type, say).
	KindUnsupported
)

func (k ErrorKind) String() string {
	switch k {
	case KindTruncated:
		return "truncated"
	case KindMalformed:
		return "malformed"
	case KindChecksum:
		return "bad checksum"
	case KindUnsupported:
		return "unsupported"
	}
	return "unknown"
}

// ParseError is what ParseX returns. Every ParseError is one of the
// preallocated values below (returning one never allocates); compare with
// errors.Is against either a specific value (ErrIPv4Checksum) or a generic
// kind (ErrChecksum matches every checksum failure).
type ParseError struct {
	Layer  string // "ethernet", "arp", "ipv4", "icmpv4", "udp", "tcp"; "" for a generic kind
	Kind   ErrorKind
	Reason string
}

func (e *ParseError) Error() string {
	if e.Layer == "" {
		return "header: " + e.Kind.String()
	}
	return "header: " + e.Layer + ": " + e.Reason
}

// Is makes errors.Is(err, ErrChecksum) (and the other generic kinds) match
// every ParseError of that kind.
func (e *ParseError) Is(target error) bool {
	t, ok := target.(*ParseError)
	return ok && t.Layer == "" && t.Kind == e.Kind
}

func perr(layer string, kind ErrorKind, reason string) *ParseError {
	return &ParseError{Layer: layer, Kind: kind, Reason: reason}
}

// Generic kinds, for errors.Is.
var (
	ErrTruncated   = &ParseError{Kind: KindTruncated}
	ErrMalformed   = &ParseError{Kind: KindMalformed}
	ErrChecksum    = &ParseError{Kind: KindChecksum}
	ErrUnsupported = &ParseError{Kind: KindUnsupported}
)

// Ethernet errors.
var (
	ErrEthernetTruncated     = perr("ethernet", KindTruncated, "frame shorter than the 14-byte header")
	ErrEthernetVLANTruncated = perr("ethernet", KindTruncated, "frame shorter than the 18-byte 802.1Q-tagged header")
)

// ARP errors (RFC 826).
var (
	ErrARPTruncated     = perr("arp", KindTruncated, "packet shorter than 28 bytes (Ethernet/IPv4 ARP)")
	ErrARPHardwareType  = perr("arp", KindUnsupported, "hardware type is not Ethernet (1)")
	ErrARPProtocolType  = perr("arp", KindUnsupported, "protocol type is not IPv4 (0x0800)")
	ErrARPAddressLength = perr("arp", KindMalformed, "address lengths are not 6 (hardware) and 4 (protocol)")
)

// IPv4 errors (RFC 791, RFC 1122 §3.2.1).
var (
	ErrIPv4Truncated       = perr("ipv4", KindTruncated, "packet shorter than the 20-byte minimum header")
	ErrIPv4Version         = perr("ipv4", KindMalformed, "version is not 4")
	ErrIPv4HeaderLength    = perr("ipv4", KindMalformed, "IHL below 5 (20 bytes)")
	ErrIPv4HeaderTruncated = perr("ipv4", KindTruncated, "packet shorter than the header length IHL gives")
	ErrIPv4TotalLength     = perr("ipv4", KindMalformed, "total length smaller than the header length")
	ErrIPv4TotalTruncated  = perr("ipv4", KindTruncated, "packet shorter than its total length")
	ErrIPv4Checksum        = perr("ipv4", KindChecksum, "header checksum does not verify")
	ErrIPv4Options         = perr("ipv4", KindMalformed, "malformed option (length below 2 or past the header)")
	ErrIPv4FragmentTooBig  = perr("ipv4", KindMalformed, "fragment offset plus total length exceeds 65535 bytes")
)

// ICMPv4 errors (RFC 792).
var (
	ErrICMPv4Truncated = perr("icmpv4", KindTruncated, "message shorter than the 8-byte header")
	ErrICMPv4Checksum  = perr("icmpv4", KindChecksum, "checksum does not verify")
)

// UDP errors (RFC 768).
var (
	ErrUDPTruncated = perr("udp", KindTruncated, "datagram shorter than the 8-byte header")
	ErrUDPLength    = perr("udp", KindMalformed, "length field below 8 or beyond the IP payload")
	ErrUDPChecksum  = perr("udp", KindChecksum, "checksum does not verify")
)

// TCP errors (RFC 9293).
var (
	ErrTCPTruncated       = perr("tcp", KindTruncated, "segment shorter than the 20-byte minimum header")
	ErrTCPDataOffset      = perr("tcp", KindMalformed, "data offset below 5 (20 bytes)")
	ErrTCPHeaderTruncated = perr("tcp", KindTruncated, "segment shorter than the header length the data offset gives")
	ErrTCPChecksum        = perr("tcp", KindChecksum, "checksum does not verify")
	ErrTCPOptionLength    = perr("tcp", KindMalformed, "option length below 2 or past the header (RFC 9293 MUST-7)")
	ErrTCPOptionSize      = perr("tcp", KindMalformed, "option has the wrong length for its kind")
)
