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
(*                                                                         *)
(* A TX post carries the kind of its descriptor in aux (trace/SCHEMA.md,   *)
(* version 3): "0x1" a context descriptor (its buf is the descriptor's     *)
(* first quadword, kept in ctxq to match the device's fetch), "0x2" a data *)
(* descriptor without RS, none a data descriptor with RS.  Steps nobody    *)
(* records are composed in front of the event that implies them: the      *)
(* device's completion of descriptors without RS (no write-back) before a *)
(* write-back after them.  The driver records reclaims of buffers only: a  *)
(* reclaim of the data descriptor after a context is Reclaim of both.      *)
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
Aux(e) == IF "aux" \in DOMAIN e THEN e.aux ELSE "0x0"
IsCtxPost(e) == Aux(e) = "0x1"
PostKind(e) == IF Aux(e) = "0x2" THEN "nors" ELSE "rs"
\* The buffers: what posts of data descriptors, reclaims and DMA name (a
\* context's first quadword is no buffer; a fetch names what was posted).
NamesBuf(e) == e.kind \in {"reclaim", "dev_dma"} \/ (e.kind = "post" /\ ~IsCtxPost(e))
TraceBufs == {Trace[k].buf : k \in {k \in DOMAIN Trace : NamesBuf(Trace[k])}}
DeviceRecorded == \E k \in DOMAIN Trace : Trace[k].kind \in DeviceKinds

VARIABLES l,    \* the next line of Trace to explain
          ctxq  \* per slot: the first quadword of the context descriptor posted there
traceVars == <<vars, l, ctxq>>

TraceInit == Init /\ l = 1 /\ ctxq = [i \in Slots |-> NoBuf]

Ev == Trace[l]
Is(k) == l <= Len(Trace) /\ Ev.kind = k

\* Alloc(b) \cdot Post(b, k), by hand.
AllocPost(b, k) == /\ b \in pool
                /\ DrvNext(txi) # clean
                /\ desc' = [desc EXCEPT ![txi] = [buf |-> b, dd |-> FALSE]]
                /\ slot' = [slot EXCEPT ![txi] = b]
                /\ pool' = pool \ {b}
                /\ txi' = DrvNext(txi)
                /\ order' = Append(order, b)
                /\ cmdw' = [cmdw EXCEPT ![txi] = TRUE]
                /\ kind' = [kind EXCEPT ![txi] = k]
                /\ UNCHANGED <<tdt, tdh, wb, clean, app, pend>>

PostE == Is("post") /\ ~IsCtxPost(Ev) /\ Ev.index = txi /\ AllocPost(Ev.buf, PostKind(Ev)) /\ UNCHANGED ctxq
PostCtxE == Is("post") /\ IsCtxPost(Ev) /\ Ev.index = txi /\ WriteCtx /\ ctxq' = [ctxq EXCEPT ![txi] = Ev.buf]
TailE == Is("tail") /\ \/ Ev.index = tdt /\ UNCHANGED vars
                       \/ Ev.index = txi /\ WriteTail
DDSeenE == Is("dd_seen") /\ Ev.index \in Slots /\ InRange(clean, txi, Ev.index) /\ desc[Ev.index].dd
           /\ UNCHANGED vars
ReclaimE == Is("reclaim") /\ Ev.index = RecEnd /\ slot[RecEnd] = Ev.buf /\ Reclaim
TailReadE == Is("dev_tail_read") /\ UNCHANGED vars
FetchE == Is("dev_fetch") /\ Ev.index = tdh /\ DevFetch
          /\ \/ slot[tdh] # NoBuf /\ desc[tdh].buf = Ev.buf
             \/ OwnedCtx(tdh) /\ ctxq[tdh] = Ev.buf
DMAE == Is("dev_dma") /\ Ev.index \in Slots /\ InRange(wb, tdh, Ev.index) /\ slot[Ev.index] = Ev.buf
        /\ UNCHANGED vars
WriteBackE == Is("dev_writeback") /\ Ev.index = wb /\ slot[wb] # NoBuf /\ kind[wb] = "rs" /\ DevWriteBack
HeadE == Is("dev_head") /\ Ev.index = tdh /\ UNCHANGED vars

\* Without device events, the device's steps are composed lazily in front of
\* the driver event that observes them: only the DD-observing events need
\* them, and delaying a device step never disables a driver step (the tail
\* only grows what the device owns).
NeedsDevice == \/ Is("dd_seen") /\ Ev.index \in Slots /\ ~desc[Ev.index].dd
               \/ Is("reclaim") /\ ~DDFrom(clean)

\* Unrecorded steps, composed in front of the event that implies them: the
\* device's completion of a descriptor without RS or of a context before a
\* write-back after it.
SilentDone == Is("dev_writeback") /\ Ev.index # wb /\ kind[wb] # "rs" /\ DevWriteBack

Done == l = Len(Trace) + 1 /\ UNCHANGED traceVars

TraceNext ==
    \/ /\ PostCtxE
       /\ l' = l + 1
    \/ /\ \/ PostE \/ TailE \/ DDSeenE \/ ReclaimE \/ TailReadE
          \/ FetchE \/ DMAE \/ WriteBackE \/ HeadE
       /\ l' = l + 1
       /\ UNCHANGED ctxq
    \/ /\ ~DeviceRecorded /\ NeedsDevice
       /\ IF wb # tdh THEN DevWriteBack ELSE DevFetch
       /\ UNCHANGED <<l, ctxq>>
    \/ /\ SilentDone
       /\ UNCHANGED <<l, ctxq>>
    \/ Done

TraceSpec == TraceInit /\ [][TraceNext]_traceVars
=============================================================================
