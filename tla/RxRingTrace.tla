---------------------------- MODULE RxRingTrace ----------------------------
(***************************************************************************)
(* Trace spec: accepts an NDJSON trace only if the events of one receive   *)
(* ring are a behaviour of RxRing.  The application's AppFree is never     *)
(* recorded: it is composed (by hand) in front of a Refill that reuses a   *)
(* handed-up buffer; a dropped frame's buffer re-posted in place is        *)
(* HandUp, AppFree and Refill composed.  Without device events, the        *)
(* device's DevReceive happens in front of a DD observation that needs it. *)
(* Accepted iff TLC finds no deadlock (see TxRingTrace.tla).               *)
(***************************************************************************)
EXTENDS RxRing, Json, TLC

CONSTANTS TraceFile, TraceDev, TraceQueue

Log == ndJsonDeserialize(TraceFile)
ToSet(s) == {s[i] : i \in DOMAIN s}
Header == Log[1]
RingKinds == {"post", "tail", "dd_seen", "reclaim", "dev_tail_read", "dev_fetch", "dev_dma",
              "dev_writeback", "dev_head", "dev_drop"}
DeviceKinds == {"dev_fetch", "dev_dma", "dev_writeback", "dev_head", "dev_drop"}
Trace == SelectSeq(Tail(Log), LAMBDA e: e.dev = TraceDev /\ e.dir = "rx" /\ e.queue = TraceQueue
                                          /\ e.kind \in RingKinds)
TraceRingSize ==
    LET d == CHOOSE d \in ToSet(Header.devices) : d.dev = TraceDev
        q == CHOOSE q \in ToSet(d.queues) : q.dir = "rx" /\ q.queue = TraceQueue
    IN q.ring
TraceBufs == {Trace[k].buf : k \in {k \in DOMAIN Trace : Trace[k].kind \in {"post", "reclaim", "dev_fetch", "dev_dma"}}}
DeviceRecorded == \E k \in DOMAIN Trace : Trace[k].kind \in DeviceKinds

VARIABLE l
traceVars == <<vars, l>>

TraceInit == Init /\ l = 1

Ev == Trace[l]
Is(k) == l <= Len(Trace) /\ Ev.kind = k

\* AppFree(b) \cdot Refill(b), by hand.
FreeRefill(b) == /\ b \in app
                 /\ slot[rxi] = NoBuf
                 /\ desc' = [desc EXCEPT ![rxi] = [buf |-> b, dd |-> FALSE]]
                 /\ slot' = [slot EXCEPT ![rxi] = b]
                 /\ app' = app \ {b}
                 /\ rxi' = DrvNext(rxi)
                 /\ order' = Append(order, b)
                 /\ wlen' = [wlen EXCEPT ![rxi] = FALSE]
                 /\ UNCHANGED <<rdt, rdh, pool, lag, drvVars>>

\* HandUp \cdot AppFree(b) \cdot Refill(b): a dropped frame's buffer back in place.
Repost(b) == /\ slot[rxi] = b
             /\ desc[rxi].dd
             /\ desc' = [desc EXCEPT ![rxi] = [buf |-> b, dd |-> FALSE]]
             /\ rxi' = DrvNext(rxi)
             /\ order' = Append(Remove(order, b), b)
             /\ wlen' = [wlen EXCEPT ![rxi] = FALSE]
             /\ UNCHANGED <<slot, rdt, rdh, pool, app, lag, drvVars>>

PostE == Is("post") /\ Ev.index = rxi /\ (Refill(Ev.buf) \/ FreeRefill(Ev.buf) \/ Repost(Ev.buf))
TailE == Is("tail") /\ \/ Ev.index = rdt /\ UNCHANGED vars
                       \/ Ev.index = Prev(rxi) /\ WriteTail
DDSeenE == Is("dd_seen") /\ Ev.index = rxi /\ slot[rxi] # NoBuf /\ desc[rxi].dd /\ UNCHANGED vars
ReclaimE == Is("reclaim") /\ Ev.index = rxi /\ slot[rxi] = Ev.buf /\ HandUp
TailReadE == Is("dev_tail_read") /\ UNCHANGED vars
DevUses(b) == /\ Ev.index = rdh /\ rdh # rdt
              /\ slot[rdh] = b /\ desc[rdh].buf = b /\ ~desc[rdh].dd
FetchE == (Is("dev_fetch") \/ Is("dev_dma")) /\ DevUses(Ev.buf) /\ UNCHANGED vars
WriteBackE == Is("dev_writeback") /\ DevUses(slot[rdh]) /\ slot[rdh] # NoBuf /\ DevReceive
HeadE == Is("dev_head") /\ Ev.index = rdh /\ UNCHANGED vars
DropE == Is("dev_drop") /\ UNCHANGED vars

\* Without device events, DevReceive is composed lazily in front of the
\* driver event that observes DD (see TxRingTrace.tla).
NeedsDevice == /\ Is("dd_seen") \/ Is("reclaim") \/ Is("post")
               /\ Ev.index = rxi
               /\ slot[rxi] # NoBuf
               /\ ~desc[rxi].dd

Done == l = Len(Trace) + 1 /\ UNCHANGED traceVars

TraceNext ==
    \/ /\ \/ PostE \/ TailE \/ DDSeenE \/ ReclaimE \/ TailReadE
          \/ FetchE \/ WriteBackE \/ HeadE \/ DropE
       /\ l' = l + 1
    \/ /\ ~DeviceRecorded /\ NeedsDevice
       /\ DevReceive
       /\ UNCHANGED l
    \/ Done

TraceSpec == TraceInit /\ [][TraceNext]_traceVars
=============================================================================
