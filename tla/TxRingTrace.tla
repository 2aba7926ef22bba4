---------------------------- MODULE TxRingTrace ----------------------------
(***************************************************************************)
(* Trace spec: accepts an NDJSON trace (schema trace/SCHEMA.md) only if    *)
(* the events of one transmit ring are a behaviour of TxRing.              *)
(*                                                                         *)
(* Each event is one step of TxRing (or, for a post, the application's     *)
(* unrecorded Alloc composed with Post, written out by hand).  When the   *)
(* trace has no device events for the ring (recorded against hardware),   *)
(* the device's DevFetch and DevWriteBack happen, without consuming an     *)
(* event, in front of a DD observation that needs them.  A trace is        *)
(* accepted iff TLC finds no deadlock:                                     *)
(* every reachable state either consumes the next event, takes a device    *)
(* step, or has consumed the whole trace (then it stutters in Done).       *)
(***************************************************************************)
EXTENDS TxRing, Json, TLC

CONSTANTS TraceFile,  \* path of the NDJSON trace
          TraceDev,   \* which device's ring
          TraceQueue  \* which TX queue

Log == ndJsonDeserialize(TraceFile)
ToSet(s) == {s[i] : i \in DOMAIN s}
Header == Log[1]
RingKinds == {"post", "tail", "dd_seen", "reclaim", "dev_tail_read", "dev_fetch", "dev_dma",
              "dev_writeback", "dev_head", "dev_drop"}
DeviceKinds == {"dev_fetch", "dev_dma", "dev_writeback", "dev_head", "dev_drop"}
Trace == SelectSeq(Tail(Log), LAMBDA e: e.dev = TraceDev /\ e.dir = "tx" /\ e.queue = TraceQueue
                                          /\ e.kind \in RingKinds)
\* Constants of TxRing for this trace (the config substitutes them).
TraceRingSize ==
    LET d == CHOOSE d \in ToSet(Header.devices) : d.dev = TraceDev
        q == CHOOSE q \in ToSet(d.queues) : q.dir = "tx" /\ q.queue = TraceQueue
    IN q.ring
TraceBufs == {Trace[k].buf : k \in {k \in DOMAIN Trace : Trace[k].kind \in {"post", "reclaim", "dev_fetch", "dev_dma"}}}
DeviceRecorded == \E k \in DOMAIN Trace : Trace[k].kind \in DeviceKinds

VARIABLE l  \* the next line of Trace to explain
traceVars == <<vars, l>>

TraceInit == Init /\ l = 1

Ev == Trace[l]
Is(k) == l <= Len(Trace) /\ Ev.kind = k

\* Alloc(b) \cdot Post(b), by hand.
AllocPost(b) == /\ b \in pool
                /\ DrvNext(txi) # clean
                /\ desc' = [desc EXCEPT ![txi] = [buf |-> b, dd |-> FALSE]]
                /\ slot' = [slot EXCEPT ![txi] = b]
                /\ pool' = pool \ {b}
                /\ txi' = DrvNext(txi)
                /\ order' = Append(order, b)
                /\ cmdw' = [cmdw EXCEPT ![txi] = TRUE]
                /\ UNCHANGED <<tdt, tdh, wb, clean, app, pend>>

PostE == Is("post") /\ Ev.index = txi /\ AllocPost(Ev.buf)
TailE == Is("tail") /\ \/ Ev.index = tdt /\ UNCHANGED vars
                       \/ Ev.index = txi /\ WriteTail
DDSeenE == Is("dd_seen") /\ Ev.index \in Slots /\ InRange(clean, txi, Ev.index) /\ desc[Ev.index].dd
           /\ UNCHANGED vars
ReclaimE == Is("reclaim") /\ Ev.index = clean /\ slot[clean] = Ev.buf /\ Reclaim
TailReadE == Is("dev_tail_read") /\ UNCHANGED vars
FetchE == Is("dev_fetch") /\ Ev.index = tdh /\ slot[tdh] # NoBuf /\ desc[tdh].buf = Ev.buf /\ DevFetch
DMAE == Is("dev_dma") /\ Ev.index \in Slots /\ InRange(wb, tdh, Ev.index) /\ slot[Ev.index] = Ev.buf
        /\ UNCHANGED vars
WriteBackE == Is("dev_writeback") /\ Ev.index = wb /\ slot[wb] # NoBuf /\ DevWriteBack
HeadE == Is("dev_head") /\ Ev.index = tdh /\ UNCHANGED vars

\* Without device events, the device's steps are composed lazily in front of
\* the driver event that observes them: only the DD-observing events need
\* them, and delaying a device step never disables a driver step (the tail
\* only grows what the device owns).
NeedsDevice == /\ Is("dd_seen") \/ Is("reclaim")
               /\ Ev.index \in Slots
               /\ ~desc[Ev.index].dd

Done == l = Len(Trace) + 1 /\ UNCHANGED traceVars

TraceNext ==
    \/ /\ \/ PostE \/ TailE \/ DDSeenE \/ ReclaimE \/ TailReadE
          \/ FetchE \/ DMAE \/ WriteBackE \/ HeadE
       /\ l' = l + 1
    \/ /\ ~DeviceRecorded /\ NeedsDevice
       /\ IF wb # tdh THEN DevWriteBack ELSE DevFetch
       /\ UNCHANGED l
    \/ Done

TraceSpec == TraceInit /\ [][TraceNext]_traceVars
=============================================================================
