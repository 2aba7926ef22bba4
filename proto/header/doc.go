// Package header reads and writes the wire formats of Ethernet (with one
// IEEE 802.1Q tag), ARP, IPv4, ICMPv4, UDP and TCP.
//
// Each format is a view: a named []byte whose methods read fields straight
// out of the frame, in the manner of gVisor's tcpip/header. ParseX checks
// that the bytes are a well-formed X (lengths, version, checksums where the
// format has one, option syntax) and returns the view trimmed to the
// message's own length, or a *ParseError saying what is wrong. Accessors on a
// view returned by ParseX never fail; on a view made by conversion they
// assume what ParseX would have checked.
//
// ParseIPv4Verified, ParseUDPVerified, ParseTCPVerified and
// DecodeFrameVerified skip checksums the 82599 already verified on receive
// (RXCSUM, datasheet 7.1.11). DecodeFrame decodes a whole frame into a
// Frame of views. Fuzz targets for every parser live in fuzz_test.go, with
// seeds under testdata/fuzz; package headertest builds sample frames.
//
// EncodeX writes a header in place at the start of a caller's buffer
// (typically bytes made room for with dma.Packet.Prepend) and returns its
// length; encoders that compute a checksum over the payload expect the
// payload to follow the header in the same slice. EncodeX panics, like
// copy into a short slice would, when the caller's buffer is too small: that
// is a programming error, unlike bad received bytes, which are always
// reported as errors.
//
// Nothing in this package allocates: views are slices of the caller's
// memory and every error is a preallocated value.
package header
