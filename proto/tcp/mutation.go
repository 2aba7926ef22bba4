package tcp

// Mutation names a deliberate, plausible implementation mistake that the
// mutation suite (mutation_test.go, built with -tags tcpmutation) seeds to
// show that some check catches it. Without the tag, mutated is a constant
// false function (mutation_off.go) and the compiler removes every mutated
// branch: production code never runs one. Each mutation is one local
// change at the place it names.
type Mutation uint8

// The mutations (tla/README.md, "TCP mutation suite", has the table of
// which check catches which).
const (
	MutNone Mutation = iota
	// MutNoWrapCompare: the acceptability test compares sequence numbers
	// as plain uint32 values (acceptable).
	MutNoWrapCompare
	// MutWindowOffByOne: the acceptability test takes SEG.SEQ =<
	// RCV.NXT+RCV.WND (one byte past RCV.ADV; a zero window takes one).
	MutWindowOffByOne
	// MutAdvertiseBeyondBuffer: the scaled window field is rounded up,
	// advertising up to one scaling unit more than the buffer holds
	// (windowField; RFC 7323 2.4 says round down).
	MutAdvertiseBeyondBuffer
	// MutAckUnreceived: with out-of-order data held, ACKs acknowledge the
	// end of the highest out-of-order range, over the gap (send).
	MutAckUnreceived
	// MutRetransmitWrongRange: a retransmission carries SEQ but the bytes
	// of the last segment sent (the ones ending at SND.NXT) (send).
	MutRetransmitWrongRange
	// MutFinTwice: a retransmitted FIN (ending at RCV.NXT) is consumed
	// again, RCV.NXT += 1 (segmentArrives).
	MutFinTwice
	// MutRstOutOfWindow: an RST resets before the acceptability test
	// (segmentArrives).
	MutRstOutOfWindow
	// MutDeliverOutOfOrder: out-of-order data is appended to the readable
	// bytes at once, before the gap fills (receiveData).
	MutDeliverOutOfOrder
	// MutSACKDoubleCount: SACKed bytes are counted in the pipe during SACK
	// recovery although the scoreboard already took them out (output):
	// recovery sends too little.
	MutSACKDoubleCount
	// MutAckBeyondSndNxt: an ACK beyond SND.MAX is accepted (processAck).
	MutAckBeyondSndNxt
	// MutIgnorePAWS: the PAWS test (RFC 7323 5.3) is skipped
	// (segmentArrives).
	MutIgnorePAWS
	// MutNoWindowUpdate: a read that opens the window does not send a
	// window update (afterRead); only the persist timer reopens it.
	MutNoWindowUpdate
	// MutNagleAlways: Nagle holds a short segment back even when nothing
	// is in flight (sendData): it goes out only on the persist timer.
	MutNagleAlways
	mutCount
)

var mutationNames = [mutCount]string{"none", "NoWrapCompare", "WindowOffByOne", "AdvertiseBeyondBuffer", "AckUnreceived",
	"RetransmitWrongRange", "FinTwice", "RstOutOfWindow", "DeliverOutOfOrder", "SACKDoubleCount", "AckBeyondSndNxt",
	"IgnorePAWS", "NoWindowUpdate", "NagleAlways"}

func (m Mutation) String() string {
	if m < mutCount {
		return mutationNames[m]
	}
	return "unknown"
}
