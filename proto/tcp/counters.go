package tcp

import (
	"sync/atomic"

	"github.com/verinic/verinic/proto/stack"
)

// Counter names a TCP counter. The names follow Linux's TCP MIB (RFC 4022's
// tcp group and Linux's TcpExt) where one exists.
type Counter int

// Counters.
const (
	ActiveOpens            Counter = iota // connections that went CLOSED -> SYN-SENT
	PassiveOpens                          // connections that went LISTEN -> SYN-RECEIVED (cookies included)
	AttemptFails                          // SYN-SENT/SYN-RECEIVED -> CLOSED, or SYN-RECEIVED -> LISTEN
	EstabResets                           // ESTABLISHED/CLOSE-WAIT -> CLOSED by a reset
	InSegs                                // segments received, errors included
	OutSegs                               // segments sent, retransmissions excluded
	RetransSegs                           // segments retransmitted
	InErrs                                // segments received in error (checksum, malformed, martian)
	InCsumErrors                          // segments with a bad checksum
	OutRsts                               // segments sent with RST
	SyncookiesSent                        // SYN-ACKs carrying a cookie
	SyncookiesRecv                        // connections made from a valid cookie
	SyncookiesFailed                      // ACKs to a listener with an invalid cookie
	ListenOverflows                       // handshakes completed with the accept queue full
	ListenDrops                           // SYNs and ACKs a listener dropped
	TCPTimeouts                           // retransmission timer expirations
	TCPAbortOnTimeout                     // connections closed after too many retransmissions
	TCPAbortOnData                        // connections reset because data arrived after close
	TCPAbortOnClose                       // connections reset by Close with unread data
	TCPAbortOnMemory                      // connections refused for the memory or connection cap
	TCPChallengeACK                       // challenge ACKs sent (RFC 5961)
	TCPChallengeACKLimited                // challenge ACKs not sent: rate limit
	TCPSYNChallenge                       // SYNs in a synchronized state answered with a challenge ACK
	TCPRSTInWindow                        // in-window RSTs not at RCV.NXT (challenged)
	TCPRSTOutOfWindow                     // RSTs outside the window, ignored
	TCPACKUnacceptable                    // ACKs of data never sent, or too old (dropped)
	PAWSRejected                          // segments dropped by PAWS (RFC 7323 5)
	TCPOutOfWindow                        // segments outside the receive window (ACK sent)
	TCPOFOQueue                           // segments queued out of order
	TCPOFODrop                            // out-of-order segments dropped (range or memory cap)
	TCPRcvPruned                          // bytes dropped: past the receive buffer
	TCPDelayedACKs                        // delayed ACKs sent by the timer
	TCPPureAcks                           // ACK-only segments received
	TCPSACKRecovery                       // loss recoveries with SACK (RFC 6675)
	TCPRenoRecovery                       // loss recoveries without SACK (RFC 6582)
	TCPFastRetrans                        // fast retransmissions
	TCPLimitedTransmit                    // segments sent by limited transmit (RFC 3042)
	TCPSACKBlocksRecv                     // SACK blocks received
	TCPDSACKRecv                          // D-SACK blocks received
	TCPWinProbe                           // zero-window probes sent
	TCPKeepAlive                          // keepalive probes sent
	TCPWinUpdates                         // window updates sent on behalf of the reader
	TCPPMTUUpdates                        // MSS reductions from ICMP fragmentation needed
	TCPICMPErrors                         // ICMP errors for connections
	TCPHandoffs                           // segments handed to a connection's home loop
	TCPBacklogDrop                        // segments dropped: the home loop's inbox was full
	TCPMemoryPressures                    // buffer reservations refused by MemoryLimit
	TCPTimeWaitReuse                      // TIME-WAIT connections ended by a new SYN (RFC 6191)
	TCPTimeWaitRST                        // RSTs ignored in TIME-WAIT (RFC 1337)
	TSOBursts                             // segments handed to the device to cut (TSO); OutSegs and RetransSegs count the segments they make
	CurrEstab                             // connections in ESTABLISHED or CLOSE-WAIT (gauge)
	CurrConns                             // connection endpoints, TIME-WAIT included (gauge)
	MemoryBytes                           // buffer bytes held (gauge)
	numCounters
)

var counterNames = [numCounters]string{
	"ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets", "InSegs", "OutSegs", "RetransSegs",
	"InErrs", "InCsumErrors", "OutRsts", "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed",
	"ListenOverflows", "ListenDrops", "TCPTimeouts", "TCPAbortOnTimeout", "TCPAbortOnData",
	"TCPAbortOnClose", "TCPAbortOnMemory", "TCPChallengeACK", "TCPChallengeACKLimited",
	"TCPSYNChallenge", "TCPRSTInWindow", "TCPRSTOutOfWindow", "TCPACKUnacceptable", "PAWSRejected",
	"TCPOutOfWindow", "TCPOFOQueue", "TCPOFODrop", "TCPRcvPruned", "TCPDelayedACKs", "TCPPureAcks",
	"TCPSACKRecovery", "TCPRenoRecovery", "TCPFastRetrans", "TCPLimitedTransmit", "TCPSACKBlocksRecv",
	"TCPDSACKRecv", "TCPWinProbe", "TCPKeepAlive", "TCPWinUpdates", "TCPPMTUUpdates", "TCPICMPErrors",
	"TCPHandoffs", "TCPBacklogDrop", "TCPMemoryPressures", "TCPTimeWaitReuse", "TCPTimeWaitRST", "TSOBursts",
	"CurrEstab", "CurrConns", "MemoryBytes",
}

// String returns the counter's name.
func (c Counter) String() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return counterNames[c]
}

type counterSet [numCounters]atomic.Uint64

func (c *counterSet) inc(k Counter)           { c[k].Add(1) }
func (c *counterSet) add(k Counter, n uint64) { c[k].Add(n) }

// Counters is a snapshot of the TCP counters.
type Counters struct {
	v [numCounters]uint64
}

// Get returns one counter.
func (c Counters) Get(k Counter) uint64 {
	if k < 0 || k >= numCounters {
		return 0
	}
	return c.v[k]
}

// Stat is a named counter value, as the stack's counters are.
type Stat = stack.Stat

// All returns every counter in declaration order.
func (c Counters) All() []Stat {
	out := make([]Stat, numCounters)
	for i := range out {
		out[i] = Stat{Name: counterNames[i], Value: c.v[i]}
	}
	return out
}

// Counters returns a snapshot of the counters.
func (p *Protocol) Counters() Counters {
	var c Counters
	for i := range c.v {
		c.v[i] = p.c[i].Load()
	}
	c.v[CurrEstab] = uint64(max(p.estab.Load(), 0))
	c.v[CurrConns] = uint64(max(p.conns.Load(), 0))
	c.v[MemoryBytes] = uint64(max(p.memory.Load(), 0))
	return c
}
