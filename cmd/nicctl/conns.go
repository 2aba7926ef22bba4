package main

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verinic/verinic/proto/tcp"
)

// ssState is a state's name as ss shows it.
func ssState(s tcp.State) string {
	switch s {
	case tcp.Established:
		return "ESTAB"
	case tcp.SynReceived:
		return "SYN-RECV"
	case tcp.Closed:
		return "UNCONN"
	}
	return s.String() // LISTEN, SYN-SENT, FIN-WAIT-1 ... as RFC 9293 and ss name them
}

// ssEndpoint is an address:port as ss shows it; a listener's peer is
// 0.0.0.0:*.
func ssEndpoint(a netip.AddrPort, peer bool) string {
	addr := "0.0.0.0"
	if a.Addr().IsValid() {
		addr = a.Addr().String()
	}
	if peer && a.Port() == 0 {
		return addr + ":*"
	}
	return addr + ":" + strconv.Itoa(int(a.Port()))
}

// ssMillis is a duration in milliseconds, to the microsecond, as ss prints
// rtt and rto.
func ssMillis(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64)
}

// infiniteSsthresh is the slow-start threshold before the first loss: from
// there on ss leaves it out.
const infiniteSsthresh = 1 << 30

// ssDetails is the second line of a connection in ss -ti: cwnd and ssthresh
// in segments of mss, rtt/rttvar and rto in milliseconds, mss, window
// scales (send, receive), the sack and ts options when in use,
// retransmissions when there are, the windows in bytes, and the congestion
// control.
func ssDetails(in tcp.Info) string {
	var b []string
	segs := func(n int) int {
		if in.MSS <= 0 {
			return n
		}
		return n / in.MSS
	}
	b = append(b, fmt.Sprintf("cwnd:%d", segs(in.Cwnd)))
	if in.Ssthresh > 0 && in.Ssthresh < infiniteSsthresh {
		b = append(b, fmt.Sprintf("ssthresh:%d", segs(in.Ssthresh)))
	}
	if in.SRTT > 0 {
		b = append(b, "rtt:"+ssMillis(in.SRTT)+"/"+ssMillis(in.RTTVar))
	}
	if in.RTO > 0 {
		b = append(b, "rto:"+ssMillis(in.RTO))
	}
	b = append(b, fmt.Sprintf("mss:%d", in.MSS))
	if in.WScale[0] >= 0 {
		b = append(b, fmt.Sprintf("wscale:%d,%d", in.WScale[0], in.WScale[1]))
	}
	if in.SACK {
		b = append(b, "sack")
	}
	if in.Timestamps {
		b = append(b, "ts")
	}
	if in.Retrans > 0 {
		b = append(b, fmt.Sprintf("retrans:%d", in.Retrans))
	}
	b = append(b, fmt.Sprintf("snd_wnd:%d rcv_wnd:%d", in.SndWnd, in.RcvWnd))
	if in.Congestion != "" {
		b = append(b, in.Congestion)
	}
	return strings.Join(b, " ")
}

// formatConns writes the connection table the way `ss -ti` does: a header,
// then per connection a line with State, Recv-Q, Send-Q, Local and Peer
// (columns as wide as their widest entry)
// (for a listener, Recv-Q is the accept queue and Send-Q the backlog, as in
// ss -lt) and, but for listeners, a line of details (ssDetails) indented
// by a tab. Listeners come first, then the rest by local and peer address.
func formatConns(w io.Writer, conns []tcp.Info) error {
	conns = slices.Clone(conns)
	slices.SortFunc(conns, func(a, b tcp.Info) int {
		if (a.State == tcp.Listen) != (b.State == tcp.Listen) {
			if a.State == tcp.Listen {
				return -1
			}
			return 1
		}
		return cmp.Or(a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
	})
	const localHdr, peerHdr = "Local Address:Port", "Peer Address:Port"
	lw, rw, sw := len(localHdr), len("Recv-Q"), len("Send-Q")
	for _, c := range conns {
		lw = max(lw, len(ssEndpoint(c.Local, false)))
		rw = max(rw, len(strconv.Itoa(c.RecvQ)))
		sw = max(sw, len(strconv.Itoa(c.SendQ)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-*s %-*s %-*s %s\n", "State", rw, "Recv-Q", sw, "Send-Q", lw, localHdr, peerHdr)
	for _, c := range conns {
		fmt.Fprintf(&b, "%-10s %-*d %-*d %-*s %s\n", ssState(c.State), rw, c.RecvQ, sw, c.SendQ, lw, ssEndpoint(c.Local, false), ssEndpoint(c.Remote, true))
		if c.State != tcp.Listen {
			fmt.Fprintf(&b, "\t %s\n", ssDetails(c))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
