package header_test

import (
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
