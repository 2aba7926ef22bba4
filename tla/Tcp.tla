-------------------------------- MODULE Tcp --------------------------------
(***************************************************************************)
(* The TCP connection state machine of RFC 9293 between two endpoints A    *)
(* and B, with sequence numbers, windows, retransmission and a small byte  *)
(* stream in each direction, over a channel that loses, duplicates and     *)
(* reorders segments.                                                      *)
(*                                                                         *)
(* - Sequence numbers live modulo M (RFC 9293 3.4: arithmetic modulo      *)
(*   2^32; here 2^k with k small) and initial sequence numbers are chosen  *)
(*   nondeterministically from ISN, so wrap-around is explored.            *)
(* - The channel is a set of segments in flight, at most K of them: a     *)
(*   segment may be received and consumed (Receive), received and kept    *)
(*   (ReceiveDup: a duplicate), or lost (Lose); any one may be received    *)
(*   next (reordering).  A segment sent while K are in flight is lost.     *)
(* - Each endpoint p sends N(p) bytes; the i-th byte has value i, so the   *)
(*   history dlv[p] of bytes delivered to p's application shows order and  *)
(*   duplication.  A segment carries at most one byte (data), or a FIN.    *)
(* - Receive window (RFC 9293 3.8.6): p's receive buffer holds buf bytes   *)
(*   delivered in order but not yet read by the application (Read); it     *)
(*   advertises RCV.WND = W - buf.  The sender keeps SND.WND from the last *)
(*   acceptable ACK and sends only inside [SND.UNA, SND.UNA + SND.WND),    *)
(*   probing a zero window with one byte (Persist, RFC 9293 3.8.6.1).      *)
(* - Segments are processed as RFC 9293 3.10.7 says, including RFC 5961's *)
(*   RST and SYN checks (challenge ACKs).  Data is accepted in order only  *)
(*   (an in-window segment beyond RCV.NXT is acknowledged and dropped:     *)
(*   RFC 9293 3.10.7.4 allows holding it, which we do not model).          *)
(* - The opens happen at Init (Opens: A active and B passive, or both     *)
(*   active for simultaneous open, RFC 9293 3.5 figure 8).  Close is       *)
(*   called once every byte has been sent (RFC 9293 3.10.4: CLOSE after    *)
(*   the SENDs are segmentized); closes may be simultaneous (3.6).         *)
(* - An off-path attacker may inject up to MaxInject ACK or RST segments  *)
(*   with any sequence and acknowledgment numbers (RFC 5961's threat).     *)
(*                                                                         *)
(* Abstracted: options (MSS, window scale, timestamps, SACK), congestion   *)
(* control, SND.WL1/WL2 (a reordered ACK may re-set SND.WND; the persist   *)
(* probe makes that harmless), URG, the security check, user ABORT, and    *)
(* real time: timers are actions that may fire whenever they are armed.    *)
(*                                                                         *)
(* TIME-WAIT (RFC 9293 3.6.1, 3.10.7.4): its 2MSL timeout is the action    *)
(* TimeWaitExpire, enabled only when no segment of the connection remains  *)
(* in the channel and the peer is no longer waiting for the ACK of its FIN *)
(* (not CLOSING or LAST-ACK).  We chose this over a counter because the    *)
(* model has no clock to count against: 2MSL exists so that (1) every old  *)
(* segment has died (MSL each way) and (2) a lost final ACK is re-sent     *)
(* when the peer retransmits its FIN, which the peer does well within 2MSL *)
(* (RFC 9293 3.6.1, RFC 1122 4.2.2.13).  The condition states exactly     *)
(* these two consequences of "2MSL elapsed" without a time bound.          *)
(*                                                                         *)
(* Bug selects a deliberately broken variant ("none" is the protocol);    *)
(* the Go transcription is models/tcp.go.                                  *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS M,         \* sequence number modulus (2^k)
          ISN,       \* initial sequence numbers an endpoint may choose
          W,         \* receive buffer size: the largest window
          NA, NB,    \* bytes A and B send
          K,         \* at most K segments in flight
          Opens,     \* "active_passive" (A active, B passive) or "simultaneous"
          MaxInject, \* segments an off-path attacker may inject
          Lossy,     \* TRUE: the channel also loses and duplicates segments
          Bug

ASSUME M \in Nat /\ M >= 4 /\ ISN \subseteq 0..(M-1) /\ ISN # {}
\* Everything a receiver compares (a stream of N + 2 numbers, a window) fits in
\* half the sequence space, as RFC 9293 3.4 requires of 2^32 (MSL, ISN clock).
ASSUME W \in Nat /\ W >= 1 /\ NA \in Nat /\ NB \in Nat /\ NA + 2 + W <= M \div 2 /\ NB + 2 + W <= M \div 2
ASSUME K \in Nat /\ K >= 1 /\ MaxInject \in Nat /\ Lossy \in BOOLEAN
ASSUME Opens \in {"active_passive", "simultaneous"}
ASSUME Bug \in {"none", "no_wrap_compare", "ack_beyond_snd_nxt", "ignore_window",
                "no_time_wait", "window_off_by_one", "fin_twice", "rst_out_of_window",
                "deliver_out_of_order", "retransmit_wrong_range"}

P == {"A", "B"}
Peer(p) == IF p = "A" THEN "B" ELSE "A"
N(p) == IF p = "A" THEN NA ELSE NB
Active(p) == p = "A" \/ Opens = "simultaneous"

\* RFC 9293 3.3.2, the eleven states.
States == {"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
           "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"}
Synchronized == States \ {"CLOSED", "LISTEN", "SYN_SENT"}

VARIABLES ep,        \* ep[p]: p's TCB: st, iss, irs, una (SND.UNA), nxt (SND.NXT),
                     \*   rcv (RCV.NXT), swnd (SND.WND), buf (bytes not yet read)
          net,       \* the segments in flight
          dlv,       \* history: the bytes delivered to p's application, in order
          injected,  \* segments injected so far
          rstBad,    \* history: an RST was accepted outside the receive window
          aborted    \* history: aborted[p], p's connection was reset

vars == <<ep, net, dlv, injected, rstBad, aborted>>

Mod(x) == x % M
Off(x, base) == (x + M - base) % M          \* x - base, as a distance

(* Sequence number comparison, RFC 9293 3.4: a < b iff b - a, modulo M, is *)
(* in (0, M/2).  The broken variant compares the residues as integers.    *)
SeqLt(a, b) == IF Bug = "no_wrap_compare" THEN a < b ELSE a # b /\ Off(b, a) < M \div 2
SeqLeq(a, b) == a = b \/ SeqLt(a, b)
\* lo =< x < lo + w (the broken variant: x =< lo + w).
InWin(x, lo, w) == IF Bug = "window_off_by_one" THEN SeqLeq(lo, x) /\ SeqLeq(x, Mod(lo + w))
                   ELSE SeqLeq(lo, x) /\ SeqLt(x, Mod(lo + w))

Seg(src, seq, ack, syn, ak, fin, rst, wnd, data) ==
    [src |-> src, seq |-> seq, ack |-> ack, SYN |-> syn, ACK |-> ak, FIN |-> fin, RST |-> rst,
     wnd |-> wnd, data |-> data]
SegLen(s) == (IF s.SYN THEN 1 ELSE 0) + (IF s.FIN THEN 1 ELSE 0) + (IF s.data # 0 THEN 1 ELSE 0)

RcvWnd(e) == W - e.buf
SndOff(e) == Off(e.nxt, e.iss)   \* 1 + bytes sent (+1 once the FIN is sent)
SynSeg(p, e) == Seg(p, e.iss, 0, TRUE, FALSE, FALSE, FALSE, RcvWnd(e), 0)
SynAckSeg(p, e) == Seg(p, e.iss, e.rcv, TRUE, TRUE, FALSE, FALSE, RcvWnd(e), 0)
AckSeg(p, e) == Seg(p, e.nxt, e.rcv, FALSE, TRUE, FALSE, FALSE, RcvWnd(e), 0)
DataSeg(p, e, seq, byte) == Seg(p, seq, e.rcv, FALSE, TRUE, FALSE, FALSE, RcvWnd(e), byte)
FinSeg(p, e, seq) == Seg(p, seq, e.rcv, FALSE, TRUE, TRUE, FALSE, RcvWnd(e), 0)
RstSeg(p, seq) == Seg(p, seq, 0, FALSE, FALSE, FALSE, TRUE, 0, 0)
RstAckSeg(p, ack) == Seg(p, 0, ack, FALSE, TRUE, FALSE, TRUE, 0, 0)

\* A segment joins the channel unless K are in flight (then it is lost).
Put(n, out) == IF Cardinality(n) < K THEN n \cup out ELSE n

\* The outcome of processing a segment: the new TCB, the reply (at most one
\* segment), the byte delivered (0: none), and the history flags.
Res(e, out, byte, rb, ab) == [e |-> e, out |-> out, byte |-> byte, rb |-> rb, ab |-> ab]
R(e, out) == Res(e, out, 0, FALSE, FALSE)

TW == IF Bug = "no_time_wait" THEN "CLOSED" ELSE "TIME_WAIT"

\* SND.UNA < SEG.ACK =< SND.NXT (RFC 9293 3.10.7.4, fifth check).
AckOK(e, a) == IF Bug = "ack_beyond_snd_nxt" THEN SeqLt(e.una, a)
               ELSE SeqLt(e.una, a) /\ SeqLeq(a, e.nxt)

\* RFC 9293 3.10.7.4, first check: the segment acceptability test (our
\* segments occupy at most one sequence number, so the two tests for
\* SEG.LEN > 0 coincide).
Acceptable(e, s) ==
    IF Bug = "fin_twice" /\ s.FIN /\ Mod(s.seq + 1) = e.rcv THEN TRUE
    ELSE IF SegLen(s) = 0 THEN IF RcvWnd(e) = 0 THEN s.seq = e.rcv ELSE InWin(s.seq, e.rcv, RcvWnd(e))
    ELSE IF Bug = "ignore_window" /\ s.data # 0 THEN TRUE
    ELSE IF Bug = "window_off_by_one" THEN InWin(s.seq, e.rcv, RcvWnd(e))
    ELSE RcvWnd(e) > 0 /\ InWin(s.seq, e.rcv, RcvWnd(e))

\* The correct test of "in the receive window" for the RstInWindow history.
TrueInWin(x, e) == Off(x, e.rcv) < (IF RcvWnd(e) = 0 THEN 1 ELSE RcvWnd(e))

\* The connection is reset (RFC 9293 3.10.7.4 second check): back to LISTEN
\* if it came from a passive open and is in SYN-RECEIVED, else CLOSED.
Reset(p, e, s) ==
    LET e1 == IF e.st = "SYN_RECEIVED" /\ ~Active(p)
              THEN [e EXCEPT !.st = "LISTEN", !.nxt = e.iss, !.una = e.iss, !.rcv = 0, !.irs = 0, !.swnd = 0]
              ELSE [e EXCEPT !.st = "CLOSED"]
    IN Res(e1, {}, 0, ~TrueInWin(s.seq, e), e.st # "TIME_WAIT")

\* RFC 9293 3.10.7.1: CLOSED.
RecvClosed(p, e, s) ==
    IF s.RST THEN R(e, {})
    ELSE IF s.ACK THEN R(e, {RstSeg(p, s.ack)})
    ELSE R(e, {RstAckSeg(p, Mod(s.seq + SegLen(s)))})

\* RFC 9293 3.10.7.2: LISTEN.
RecvListen(p, e, s) ==
    IF s.RST THEN R(e, {})
    ELSE IF s.ACK THEN R(e, {RstSeg(p, s.ack)})
    ELSE IF s.SYN THEN
        LET e1 == [e EXCEPT !.st = "SYN_RECEIVED", !.irs = s.seq, !.rcv = Mod(s.seq + 1),
                            !.una = e.iss, !.nxt = Mod(e.iss + 1), !.swnd = s.wnd]
        IN R(e1, {SynAckSeg(p, e1)})
    ELSE R(e, {})

\* RFC 9293 3.10.7.3: SYN-SENT (RST validity: RFC 5961 3.2, the ACK must
\* acknowledge the SYN).
RecvSynSent(p, e, s) ==
    IF s.ACK /\ ~AckOK(e, s.ack) THEN R(e, IF s.RST THEN {} ELSE {RstSeg(p, s.ack)})
    ELSE IF s.RST THEN IF s.ACK THEN Res([e EXCEPT !.st = "CLOSED"], {}, 0, FALSE, TRUE) ELSE R(e, {})
    ELSE IF s.SYN THEN
        LET e1 == [e EXCEPT !.irs = s.seq, !.rcv = Mod(s.seq + 1), !.swnd = s.wnd,
                            !.una = IF s.ACK THEN s.ack ELSE e.una]
        IN IF SeqLt(e1.iss, e1.una)
           THEN LET e2 == [e1 EXCEPT !.st = "ESTABLISHED"] IN R(e2, {AckSeg(p, e2)})
           ELSE LET e2 == [e1 EXCEPT !.st = "SYN_RECEIVED"] IN R(e2, {SynAckSeg(p, e2)})
    ELSE R(e, {})

\* RFC 9293 3.10.7.4, fifth check, after the ACK was found acceptable or a
\* duplicate: SND.UNA and SND.WND advance, and a FIN that is now
\* acknowledged moves FIN-WAIT-1, CLOSING and LAST-ACK on.
AckUpdate(e, s) ==
    LET st0 == IF e.st = "SYN_RECEIVED" THEN "ESTABLISHED" ELSE e.st
        una == IF AckOK(e, s.ack) THEN s.ack ELSE e.una
        swnd == IF s.ack = e.una \/ AckOK(e, s.ack) THEN s.wnd ELSE e.swnd
        finAcked == st0 \in {"FIN_WAIT_1", "CLOSING", "LAST_ACK"} /\ una = e.nxt
        st == IF ~finAcked THEN st0
              ELSE CASE st0 = "FIN_WAIT_1" -> "FIN_WAIT_2"
                     [] st0 = "CLOSING" -> TW
                     [] st0 = "LAST_ACK" -> "CLOSED"
    IN [e EXCEPT !.st = st, !.una = una, !.swnd = swnd]

\* Sixth to eighth checks: the segment text (in order only) and the FIN.
RecvText(p, e, s) ==
    IF s.data # 0 THEN
        IF e.st \notin {"ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2"} THEN R(e, {})
        ELSE IF s.seq = e.rcv THEN
            LET e1 == [e EXCEPT !.rcv = Mod(e.rcv + 1), !.buf = e.buf + 1]
            IN Res(e1, {AckSeg(p, e1)}, s.data, FALSE, FALSE)
        ELSE IF Bug = "deliver_out_of_order" THEN
            LET e1 == [e EXCEPT !.buf = e.buf + 1]
            IN Res(e1, {AckSeg(p, e1)}, s.data, FALSE, FALSE)
        ELSE R(e, {AckSeg(p, e)})
    ELSE IF s.FIN THEN
        IF s.seq = e.rcv \/ (Bug = "fin_twice" /\ Mod(s.seq + 1) = e.rcv) THEN
            LET st == CASE e.st = "ESTABLISHED" -> "CLOSE_WAIT"
                        [] e.st = "FIN_WAIT_1" -> "CLOSING"
                        [] e.st = "FIN_WAIT_2" -> TW
                        [] OTHER -> e.st
                e1 == [e EXCEPT !.rcv = Mod(e.rcv + 1), !.st = st]
            IN R(e1, {AckSeg(p, e1)})
        ELSE R(e, {AckSeg(p, e)})
    ELSE R(e, {})

\* RFC 9293 3.10.7.4: SYN-RECEIVED and the synchronized states.  An
\* unacceptable segment SHOULD be answered with an ACK; we do not answer one
\* that occupies no sequence space (a pure ACK): Linux rate-limits these
\* replies (RFC 5961 7), and answering every one lets two endpoints that are
\* each ahead of the other's window trade ACKs forever and fill the channel.
RecvSync(p, e, s) ==
    IF s.RST /\ Bug = "rst_out_of_window" THEN Reset(p, e, s)
    ELSE IF ~Acceptable(e, s) THEN R(e, IF s.RST \/ SegLen(s) = 0 THEN {} ELSE {AckSeg(p, e)})
    ELSE IF s.RST THEN
        IF s.seq = e.rcv THEN Reset(p, e, s)
        ELSE R(e, {AckSeg(p, e)})                          \* RFC 5961 3.2: challenge ACK
    ELSE IF s.SYN THEN
        IF e.st = "SYN_RECEIVED" /\ ~Active(p)
        THEN R([e EXCEPT !.st = "LISTEN", !.nxt = e.iss, !.una = e.iss, !.rcv = 0, !.irs = 0, !.swnd = 0], {})
        ELSE R(e, {AckSeg(p, e)})                          \* RFC 5961 4.2: challenge ACK
    ELSE IF ~s.ACK THEN R(e, {})
    ELSE IF e.st = "SYN_RECEIVED" /\ ~AckOK(e, s.ack) THEN R(e, {RstSeg(p, s.ack)})
    ELSE IF Bug # "ack_beyond_snd_nxt" /\ SeqLt(e.nxt, s.ack) THEN R(e, {AckSeg(p, e)})
    ELSE LET e1 == AckUpdate(e, s) IN
         IF e1.st = "CLOSED" THEN R(e1, {}) ELSE RecvText(p, e1, s)

Process(p, e, s) ==
    CASE e.st = "CLOSED" -> RecvClosed(p, e, s)
      [] e.st = "LISTEN" -> RecvListen(p, e, s)
      [] e.st = "SYN_SENT" -> RecvSynSent(p, e, s)
      [] OTHER -> RecvSync(p, e, s)

-----------------------------------------------------------------------------
Init ==
    \E ia, ib \in ISN:
        LET isn == [p \in P |-> IF p = "A" THEN ia ELSE ib]
            e0(p) == [st |-> IF Active(p) THEN "SYN_SENT" ELSE "LISTEN", iss |-> isn[p], irs |-> 0,
                      una |-> isn[p], nxt |-> IF Active(p) THEN Mod(isn[p] + 1) ELSE isn[p],
                      rcv |-> 0, swnd |-> 0, buf |-> 0]
        IN /\ ep = [p \in P |-> e0(p)]
           /\ net = {SynSeg(p, e0(p)) : p \in {q \in P : Active(q)}}
           /\ dlv = [p \in P |-> <<>>]
           /\ injected = 0 /\ rstBad = FALSE /\ aborted = [p \in P |-> FALSE]

\* Receive(p, s): p processes segment s, which leaves the channel.
Receive(p, s) ==
    /\ s.src # p
    /\ LET r == Process(p, ep[p], s) IN
       /\ ep' = [ep EXCEPT ![p] = r.e]
       /\ net' = Put(net \ {s}, r.out)
       /\ dlv' = IF r.byte = 0 THEN dlv ELSE [dlv EXCEPT ![p] = Append(@, r.byte)]
       /\ rstBad' = (rstBad \/ r.rb)
       /\ aborted' = [aborted EXCEPT ![p] = @ \/ r.ab]
       /\ UNCHANGED injected

\* ReceiveDup(p, s): p processes a copy of s; s stays in the channel.
ReceiveDup(p, s) ==
    /\ Lossy
    /\ s.src # p
    /\ LET r == Process(p, ep[p], s) IN
       /\ ep' = [ep EXCEPT ![p] = r.e]
       /\ net' = Put(net, r.out)
       /\ dlv' = IF r.byte = 0 THEN dlv ELSE [dlv EXCEPT ![p] = Append(@, r.byte)]
       /\ rstBad' = (rstBad \/ r.rb)
       /\ aborted' = [aborted EXCEPT ![p] = @ \/ r.ab]
       /\ UNCHANGED injected

Lose(s) == /\ Lossy
           /\ net' = net \ {s}
           /\ UNCHANGED <<ep, dlv, injected, rstBad, aborted>>

\* SEND: the next byte, inside the send window (RFC 9293 3.8.6, 3.10.2).
SendData(p) ==
    LET e == ep[p] IN
    /\ e.st \in {"ESTABLISHED", "CLOSE_WAIT"}
    /\ SndOff(e) <= N(p)
    /\ SeqLt(e.nxt, Mod(e.una + e.swnd))
    /\ ep' = [ep EXCEPT ![p].nxt = Mod(e.nxt + 1)]
    /\ net' = Put(net, {DataSeg(p, e, e.nxt, SndOff(e))})
    /\ UNCHANGED <<dlv, injected, rstBad, aborted>>

\* Zero-window probe (RFC 9293 3.8.6.1): one new byte beyond a zero window.
Persist(p) ==
    LET e == ep[p] IN
    /\ e.st \in {"ESTABLISHED", "CLOSE_WAIT"}
    /\ SndOff(e) <= N(p)
    /\ e.swnd = 0 /\ e.una = e.nxt
    /\ ep' = [ep EXCEPT ![p].nxt = Mod(e.nxt + 1)]
    /\ net' = Put(net, {DataSeg(p, e, e.nxt, SndOff(e))})
    /\ UNCHANGED <<dlv, injected, rstBad, aborted>>

\* CLOSE once every byte is sent (RFC 9293 3.10.4): FIN, FIN-WAIT-1 or LAST-ACK.
\* The FIN occupies a sequence number and is sent inside the send window
\* like a byte (or as the probe of a zero window).  Sent beyond the window,
\* the ACKs that follow it (SEQ = SND.NXT) may be beyond the peer's window
\* and never be accepted.
Close(p) ==
    LET e == ep[p] IN
    /\ e.st \in {"ESTABLISHED", "CLOSE_WAIT"}
    /\ SndOff(e) = N(p) + 1
    /\ SeqLt(e.nxt, Mod(e.una + e.swnd)) \/ (e.swnd = 0 /\ e.una = e.nxt)
    /\ ep' = [ep EXCEPT ![p].nxt = Mod(e.nxt + 1),
                        ![p].st = IF e.st = "ESTABLISHED" THEN "FIN_WAIT_1" ELSE "LAST_ACK"]
    /\ net' = Put(net, {FinSeg(p, e, e.nxt)})
    /\ UNCHANGED <<dlv, injected, rstBad, aborted>>

\* The retransmission timeout (RFC 9293 3.8.1, RFC 6298): resend the first
\* unacknowledged sequence number (SYN, byte or FIN).  The broken variant
\* puts SND.UNA in the header but takes the byte at SND.NXT - 1.
Retransmission(p, e) ==
    LET off == Off(e.una, e.iss) IN
    IF off = 0 THEN (IF e.st = "SYN_SENT" THEN SynSeg(p, e) ELSE SynAckSeg(p, e))
    ELSE IF off <= N(p)
         THEN DataSeg(p, e, e.una, IF Bug = "retransmit_wrong_range"
                                   THEN (IF SndOff(e) - 1 <= N(p) THEN SndOff(e) - 1 ELSE N(p))
                                   ELSE off)
    ELSE FinSeg(p, e, e.una)

Timeout(p) ==
    LET e == ep[p] IN
    /\ e.st \in {"SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "CLOSE_WAIT", "CLOSING", "LAST_ACK"}
    /\ e.una # e.nxt
    /\ net' = Put(net, {Retransmission(p, e)})
    /\ UNCHANGED <<ep, dlv, injected, rstBad, aborted>>

\* The application reads a byte, opening the window.
Read(p) == /\ ep[p].buf > 0
           /\ ep' = [ep EXCEPT ![p].buf = @ - 1]
           /\ UNCHANGED <<net, dlv, injected, rstBad, aborted>>

\* The 2MSL timer (see the header comment).
TimeWaitExpire(p) ==
    /\ ep[p].st = "TIME_WAIT"
    /\ net = {}
    /\ ep[Peer(p)].st \notin {"CLOSING", "LAST_ACK"}
    /\ ep' = [ep EXCEPT ![p].st = "CLOSED"]
    /\ UNCHANGED <<net, dlv, injected, rstBad, aborted>>

\* Blind injection (RFC 5961 1.): an ACK or an RST with any numbers.
Inject(s) == /\ injected < MaxInject
             /\ Cardinality(net) < K
             /\ net' = net \cup {s}
             /\ injected' = injected + 1
             /\ UNCHANGED <<ep, dlv, rstBad, aborted>>

Next ==
    \/ \E p \in P:
        \/ SendData(p) \/ Persist(p) \/ Close(p) \/ Timeout(p) \/ Read(p) \/ TimeWaitExpire(p)
        \/ \E s \in net: Receive(p, s) \/ ReceiveDup(p, s)
    \/ \E s \in net: Lose(s)
    \/ \E p \in P, sq \in 0..(M-1):
        \/ Inject(RstSeg(p, sq))
        \/ \E a \in 0..(M-1): Inject(Seg(p, sq, a, FALSE, TRUE, FALSE, FALSE, W, 0))

Fairness ==
    \A p \in P:
        /\ WF_vars(SendData(p)) /\ WF_vars(Persist(p)) /\ WF_vars(Close(p))
        /\ WF_vars(Read(p)) /\ WF_vars(TimeWaitExpire(p))
        \* A retransmission into a full channel is a step that changes
        \* nothing, so the timer's step is enabled only intermittently.
        /\ SF_vars(Timeout(p))
        \* The channel eventually delivers every segment: weak fairness of
        \* receiving, per source and sequence number (fairness of "some
        \* segment" would let a stream of fresh ACKs starve an old FIN).
        /\ \A sq \in 0..(M-1): WF_vars(\E s \in net: s.seq = sq /\ Receive(p, s))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(* Invariants.  They use correct modular arithmetic whatever Bug is.      *)

TCB == [st : States, iss : 0..(M-1), irs : 0..(M-1), una : 0..(M-1), nxt : 0..(M-1),
        rcv : 0..(M-1), swnd : 0..W, buf : Nat]
TypeOK == /\ ep \in [P -> TCB]
          /\ \A s \in net: s.src \in P /\ s.seq \in 0..(M-1) /\ s.ack \in 0..(M-1)
          /\ Cardinality(net) <= K
          /\ dlv \in [P -> Seq(Nat)]
          /\ injected \in 0..MaxInject /\ rstBad \in BOOLEAN /\ aborted \in [P -> BOOLEAN]

\* SND.UNA =< SND.NXT =< ISS + 1 + N + 1: no ACK accepted beyond SND.NXT.
SndSeqOrder == \A p \in P:
    Off(ep[p].una, ep[p].iss) <= SndOff(ep[p]) /\ SndOff(ep[p]) <= N(p) + 2

\* RCV.NXT never passes what the peer has sent (a byte or FIN taken once).
\* (A peer that was reset has forgotten its TCB.)
RcvNotBeyondSent == \A p \in P:
    ep[p].st \in Synchronized /\ ~aborted[Peer(p)] => Off(ep[p].rcv, ep[p].irs) <= SndOff(ep[Peer(p)])

\* The receive buffer never holds more than the window allowed.
RcvBufferBounded == \A p \in P: ep[p].buf <= W

SentBytes(p) == IF SndOff(ep[p]) <= 1 \/ ep[p].st \in {"LISTEN", "SYN_SENT"} THEN 0
                ELSE IF SndOff(ep[p]) - 1 <= N(p) THEN SndOff(ep[p]) - 1 ELSE N(p)

\* The bytes p's application got are the peer's bytes 1, 2, ... in order,
\* each once (byte i has value i), and each was sent.
DeliveredInOrder == \A p \in P: \A i \in 1..Len(dlv[p]): dlv[p][i] = i
DeliveredWasSent == \A p \in P: Len(dlv[p]) <= SentBytes(Peer(p))

\* The two states are a legal pair (RFC 9293 3.5, 3.6): an endpoint past
\* the handshake has a peer that got its SYN; one that got the peer's FIN
\* has a peer that sent one; one whose FIN was acknowledged has a peer
\* that got it.
Est == Synchronized \ {"SYN_RECEIVED"}
StatesPairUp == \A p \in P:
    LET a == ep[p].st
        b == ep[Peer(p)].st
    IN ~aborted[p] /\ ~aborted[Peer(p)] =>
        /\ a \in Est => b \notin {"LISTEN", "SYN_SENT"}
        /\ a \in {"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"} =>
               b \in {"FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "LAST_ACK", "TIME_WAIT", "CLOSED"}
        /\ a \in {"FIN_WAIT_2", "TIME_WAIT"} =>
               b \in {"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT", "CLOSED"}

\* RFC 9293 3.10.7.4 / RFC 5961 3.2: an RST is accepted only in the window.
RstInWindow == ~rstBad

\* Without an attacker, nobody is reset: both sides close gracefully (the
\* final ACK of a FIN is re-sent from TIME-WAIT when it is lost).
GracefulClose == \A p \in P: ~aborted[p]

(* Liveness (checked with Lossy = FALSE: the channel reorders, and drops   *)
(* only what exceeds K, so every retransmission path is still exercised):  *)
(* every byte arrives and both endpoints end CLOSED.  With a lossy channel *)
(* the hypothesis "eventually no more losses" cannot be written as         *)
(* <>[][~Lose]_vars: a receive that changes nothing but the channel is the *)
(* same step as a loss.                                                    *)
Done == \A p \in P: ep[p].st = "CLOSED" /\ Len(dlv[p]) = N(Peer(p))
Terminates == <>Done
=============================================================================
