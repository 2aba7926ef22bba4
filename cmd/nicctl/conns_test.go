package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/tcp"
)

// The connection table reads like ss -ti: listeners first, then by address,
// columns aligned to the widest address, details on a tab-indented line in
// ss's units (cwnd and ssthresh in segments, times in milliseconds).
func TestConnsTable(t *testing.T) {
	ap := netip.MustParseAddrPort
	conns := []tcp.Info{
		{
			Local: ap("10.9.0.2:80"), Remote: ap("10.9.0.100:41000"), State: tcp.TimeWait,
			MSS: 536, Cwnd: 536 * 3, Ssthresh: 1 << 31, WScale: [2]int{-1, -1}, Congestion: "newreno",
		},
		{
			Local: ap("10.9.0.2:80"), Remote: ap("10.9.0.3:32768"), State: tcp.Established,
			RecvQ: 17, SendQ: 65536, Cwnd: 1448 * 88, Ssthresh: 1448 * 86,
			SRTT: 5379 * time.Microsecond, RTTVar: 231 * time.Microsecond, RTO: 204 * time.Millisecond,
			MSS: 1448, SndWnd: 8388480, RcvWnd: 131072, WScale: [2]int{7, 9}, SACK: true, Timestamps: true,
			Retrans: 2, Congestion: "cubic",
		},
		{Local: ap("0.0.0.0:80"), State: tcp.Listen, RecvQ: 1, SendQ: 128, WScale: [2]int{-1, -1}},
		{Local: ap("10.9.0.2:7"), Remote: ap("10.9.0.3:32769"), State: tcp.SynReceived, MSS: 1460, Cwnd: 14600, RTO: time.Second, WScale: [2]int{-1, -1}, SACK: true, Congestion: "cubic"},
	}
	var b strings.Builder
	if err := formatConns(&b, conns); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"State      Recv-Q Send-Q Local Address:Port Peer Address:Port\n" +
		"LISTEN     1      128    0.0.0.0:80         0.0.0.0:*\n" +
		"SYN-RECV   0      0      10.9.0.2:7         10.9.0.3:32769\n" +
		"\t cwnd:10 rto:1000 mss:1460 sack snd_wnd:0 rcv_wnd:0 cubic\n" +
		"ESTAB      17     65536  10.9.0.2:80        10.9.0.3:32768\n" +
		"\t cwnd:88 ssthresh:86 rtt:5.379/0.231 rto:204 mss:1448 wscale:7,9 sack ts retrans:2 snd_wnd:8388480 rcv_wnd:131072 cubic\n" +
		"TIME-WAIT  0      0      10.9.0.2:80        10.9.0.100:41000\n" +
		"\t cwnd:3 mss:536 snd_wnd:0 rcv_wnd:0 newreno\n"
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}

	// A long address or queue widens its column; an empty table is the
	// header.
	b.Reset()
	formatConns(&b, []tcp.Info{{Local: ap("100.100.100.100:65535"), Remote: ap("10.9.0.1:1"), State: tcp.FinWait1, SendQ: 4194304, MSS: 1000, Cwnd: 1000, WScale: [2]int{-1, -1}}})
	if got, want := strings.SplitN(b.String(), "\n", 3)[:2], []string{
		"State      Recv-Q Send-Q  Local Address:Port    Peer Address:Port",
		"FIN-WAIT-1 0      4194304 100.100.100.100:65535 10.9.0.1:1",
	}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("wide table:\n%q\nwant\n%q", got, want)
	}
	b.Reset()
	formatConns(&b, nil)
	if got := b.String(); got != "State      Recv-Q Send-Q Local Address:Port Peer Address:Port\n" {
		t.Errorf("empty table: %q", got)
	}
}
