package ixgbesim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/verinic/verinic/trace/pcap"
)

// ReplayPcap delivers the Ethernet frames of a pcap stream to n as if they
// arrived from the wire: each is padded to the 60-byte minimum and gets its
// FCS. It returns how many frames it offered and how many the NIC's MAC
// accepted. Timestamps are ignored (frames go in back to back). To capture
// what a NIC sends, attach a pcap.Tap (package trace/pcap) as its Link.
func ReplayPcap(r io.Reader, n *NIC) (offered, accepted int, err error) {
	pr, err := pcap.NewReader(r)
	if err != nil {
		return 0, 0, fmt.Errorf("ixgbesim: pcap replay: %w", err)
	}
	buf := make([]byte, 0, maxFrame)
	for {
		f, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return offered, accepted, nil
		}
		if err != nil {
			return offered, accepted, fmt.Errorf("ixgbesim: pcap replay, frame %d: %w", offered+1, err)
		}
		if len(f.Data)+4 > maxFrame {
			return offered, accepted, fmt.Errorf("ixgbesim: pcap replay, frame %d: %d bytes exceed the %d-byte frame limit", offered+1, len(f.Data), maxFrame-4)
		}
		buf = append(buf[:0], f.Data...)
		for len(buf) < 60 {
			buf = append(buf, 0)
		}
		buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
		offered++
		if n.Receive(buf) {
			accepted++
		}
	}
}
