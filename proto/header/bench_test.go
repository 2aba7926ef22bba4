package header_test

import (
	"errors"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/header/headertest"
)

// Parsing benchmarks, ours against gopacket's DecodingLayerParser on the same
// frames, named so that benchstat can put them side by side:
//
//	go test -run '^$' -bench 'BenchmarkParse' -count 10 ./proto/header > parse.txt
//	benchstat -col /parser parse.txt
//
// parser=verinic verifies the IPv4 header checksum and the UDP/TCP checksum
// over the whole segment (payload included); gopacket verifies no checksum.
// parser=verinic-csum-offload skips the checksums the 82599 verifies on
// receive, which is the like-for-like comparison with gopacket.
// parser=verinic-stack is the path the stack runs on every received frame
// today (proto/stack's Loop.input, ipInput, udpInput and proto/tcp's input
// and segmentArrives): ParseEthernet, ParseIPv4, then ParseUDP or ParseTCP
// and ParseTCPOptions, every checksum verified.

type benchFrame struct {
	name  string
	frame []byte
}

func benchFrames() []benchFrame {
	return []benchFrame{
		{"eth-ipv4-udp-64", headertest.UDPFrame(headertest.Options{}, 64)},
		{"eth-ipv4-udp-1472", headertest.UDPFrame(headertest.Options{}, 1472)},
		{"eth-ipv4-tcp-64", headertest.TCPFrame(headertest.Options{}, header.TCPFlagACK, headertest.TCPOptionsSACK()[:12], 64)},
		{"eth-ipv4-tcp-1448", headertest.TCPFrame(headertest.Options{}, header.TCPFlagACK, headertest.TCPOptionsSACK()[:12], 1448)},
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bf := range benchFrames() {
		b.Run("frame="+bf.name+"/parser=verinic", func(b *testing.B) {
			var f header.Frame
			b.ReportAllocs()
			for b.Loop() {
				if err := header.DecodeFrame(bf.frame, &f); err != nil || f.Layers()&(header.LayerUDP|header.LayerTCP) == 0 {
					b.Fatal(err)
				}
			}
		})
		b.Run("frame="+bf.name+"/parser=verinic-stack", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := stackParse(bf.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
		// With the NIC's receive checksum offload (what gopacket's work
		// compares to: it checks lengths, not checksums).
		b.Run("frame="+bf.name+"/parser=verinic-csum-offload", func(b *testing.B) {
			var f header.Frame
			b.ReportAllocs()
			for b.Loop() {
				if err := header.DecodeFrameVerified(bf.frame, &f, header.VerifiedIPv4|header.VerifiedL4); err != nil || f.Layers()&(header.LayerUDP|header.LayerTCP) == 0 {
					b.Fatal(err)
				}
			}
		})
		b.Run("frame="+bf.name+"/parser=gopacket", func(b *testing.B) {
			var (
				eth  layers.Ethernet
				dot  layers.Dot1Q
				ip4  layers.IPv4
				arp  layers.ARP
				icmp layers.ICMPv4
				udp  layers.UDP
				tcp  layers.TCP
				pay  gopacket.Payload
			)
			p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot, &ip4, &arp, &icmp, &udp, &tcp, &pay)
			p.IgnoreUnsupported = true
			decoded := make([]gopacket.LayerType, 0, 8)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.DecodeLayers(bf.frame, &decoded); err != nil || len(decoded) < 3 {
					b.Fatal(err, decoded)
				}
			}
		})
	}
}

// stackParse parses a frame with the calls the stack's receive path makes.
func stackParse(frame []byte) error {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		return err
	}
	if eth.EtherType() != header.EtherTypeIPv4 {
		return errors.New("not IPv4")
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		return err
	}
	switch ip.Protocol() {
	case header.IPProtocolUDP:
		_, err = header.ParseUDP(ip.Payload(), ip.Src(), ip.Dst())
		return err
	case header.IPProtocolTCP:
		seg, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst())
		if err != nil {
			return err
		}
		var opt header.TCPOptions
		return header.ParseTCPOptions(seg, &opt)
	}
	return errors.New("not UDP or TCP")
}
