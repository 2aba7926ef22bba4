------------------------------- MODULE TxRing -------------------------------
(***************************************************************************)
(* Ownership protocol of an 82599 transmit descriptor ring between the    *)
(* driver and the device (datasheet 7.2.1 transmit path, 7.2.3 descriptor  *)
(* write-back, 8.2.3.9.8 TDH / 8.2.3.9.9 TDT), together with the mempool  *)
(* the buffers come from.                                                  *)
(*                                                                         *)
(* The driver writes a descriptor (Post), and separately publishes it by   *)
(* writing the tail register (WriteTail).  The device fetches the          *)
(* descriptor at its head and reads the frame (DevFetch), and separately   *)
(* writes DD back (DevWriteBack).  The driver returns a buffer to the pool *)
(* only after it has seen DD (Reclaim).  Indices wrap modulo N; one slot   *)
(* always stays empty so that head = tail means "nothing to send".        *)
(*                                                                         *)
(* Bug selects a deliberately broken variant (for the checkers' tests):    *)
(* "none" is the protocol.  The Go transcription is models/txring.go.      *)
(*                                                                         *)
(* With Split = TRUE the driver's descriptor write is two stores: the     *)
(* advanced transmit data descriptor (datasheet 7.2.3.2.4) is two          *)
(* quadwords, the buffer address, then DTALEN/DCMD (EOP, RS)/STA (DD)      *)
(* with PAYLEN.  Post stores the address word (and advances txi; DD of a  *)
(* previous write-back is still in the other word), PostCmd the command   *)
(* word (clearing DD); pend is the slot whose command store is due.  The  *)
(* tail is written only with no store due; the broken driver               *)
(* (Bug = "tail_before_cmd_word") writes it between the two stores, and   *)
(* FetchedComplete (the device fetched only descriptors whose command word *)
(* was stored) fails.  With Split = FALSE, Post is the one step it was:   *)
(* cmdw equals "slot holds a buffer" and pend stays N.                     *)
(*                                                                         *)
(* Kinds is the set of descriptor kinds the driver posts; kind[i] is the   *)
(* kind of the descriptor last written into slot i:                        *)
(*   "rs"   a data descriptor with RS (7.2.3.2.4): the device writes DD    *)
(*          back on it once it is done with it and every earlier one;      *)
(*   "nors" a data descriptor without RS (7.2.3.5.1, WTHRESH 0): the       *)
(*          device writes nothing back on it, the driver learns of its     *)
(*          completion from DD on a later RS descriptor (in-order          *)
(*          completion), and reclaims everything up to a DD'ed RS one;     *)
(*   "ctx"  an advanced context descriptor (7.2.3.2.3): no buffer, posted  *)
(*          (PostCtx) just before the data descriptor that needs its       *)
(*          offloads; the device fetches it, keeps its contents and writes  *)
(*          nothing back; the driver reclaims its slot in one step with    *)
(*          the data descriptor after it (RecEnd).                         *)
(* DevWriteBack is the device's completion of descriptor wb: DD is stored  *)
(* only when the descriptor has RS.  With Kinds = {"rs"} (every config     *)
(* without ctx or rs in its name) kind is constant and the spec is what   *)
(* it was, with the same state counts; Split is modelled with {"rs"} only. *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS N,      \* descriptors in the ring
          Bufs,   \* the mempool's buffers
          NoBuf,  \* "no buffer" marker, not in Bufs
          Bug,    \* "none" or the name of a broken variant
          Split,  \* the descriptor write as two stores
          Kinds   \* descriptor kinds the driver posts, a subset of {"rs", "nors", "ctx"}

ASSUME N \in Nat /\ N >= 2 /\ NoBuf \notin Bufs
ASSUME Bug \in {"none", "reclaim_without_dd", "tail_before_desc", "double_post", "wrap_off_by_one",
                "tail_before_cmd_word", "reclaim_past_rs", "ctx_buf"}
ASSUME Split \in BOOLEAN
ASSUME Kinds \subseteq {"rs", "nors", "ctx"} /\ "rs" \in Kinds /\ (Split => Kinds = {"rs"})

VARIABLES desc,   \* descriptor memory: [buf, dd] per slot (shared with the device)
          slot,   \* the driver's record of the buffer in each slot
          tdt,    \* tail register (written by the driver)
          tdh,    \* device head: next descriptor the device fetches
          wb,     \* next descriptor the device writes back
          txi,    \* driver: next slot to fill
          clean,  \* driver: next slot to reclaim
          pool,   \* free buffers in the mempool
          app,    \* buffers held by the application
          order,  \* history: buffers in the order they were posted, not yet reclaimed
          cmdw,   \* per slot: the command word was stored for the slot's buffer
          pend,   \* Split: the slot whose command-word store is due, or N
          kind    \* per slot: the kind of the descriptor last written there

vars == <<desc, slot, tdt, tdh, wb, txi, clean, pool, app, order, cmdw, pend, kind>>

Slots == 0..(N-1)
DevNext(i) == (i + 1) % N
\* The driver's wrap-around; the broken variant lets the index reach N.
DrvNext(i) == IF Bug = "wrap_off_by_one" THEN (IF i = N THEN 0 ELSE i + 1) ELSE (i + 1) % N
Dist(a, b) == (b - a + N) % N
InRange(from, to, i) == Dist(from, i) < Dist(from, to)
Remove(s, b) == SelectSeq(s, LAMBDA x: x # b)
RingSeq(start) == SelectSeq([k \in 1..N |-> slot[(start + k - 1) % N]], LAMBDA x: x # NoBuf)
DataKinds == Kinds \ {"ctx"}
\* An RS descriptor in [i, txi) (RSFrom), one whose DD the device wrote back
\* (DDFrom): everything from i up to it is done (in-order completion).
\* (Set comprehensions, not \E: in an action TLC would take one successor
\* per witness, and the "states generated" counts would change.)
RSFrom(i) == {j \in Slots : Dist(i, j) < Dist(i, txi) /\ kind[j] = "rs"} # {}
DDFrom(i) == {j \in Slots : Dist(i, j) < Dist(i, txi) /\ kind[j] = "rs" /\ desc[j].dd} # {}
\* The last descriptor posted is a context whose data descriptor is due.
CtxOpen == txi # clean /\ kind[(txi + N - 1) % N] = "ctx"

Init == /\ desc = [i \in Slots |-> [buf |-> NoBuf, dd |-> FALSE]]
        /\ slot = [i \in Slots |-> NoBuf]
        /\ tdt = 0 /\ tdh = 0 /\ wb = 0 /\ txi = 0 /\ clean = 0
        /\ pool = Bufs /\ app = {} /\ order = <<>>
        /\ cmdw = [i \in Slots |-> FALSE] /\ pend = N
        /\ kind = [i \in Slots |-> "rs"]

\* The application takes a buffer from the mempool and builds a frame in it.
Alloc(b) == /\ b \in pool
            /\ pool' = pool \ {b} /\ app' = app \cup {b}
            /\ UNCHANGED <<desc, slot, tdt, tdh, wb, txi, clean, order, cmdw, pend, kind>>

\* The application frees a buffer it did not send.
Free(b) == /\ b \in app
           /\ app' = app \ {b} /\ pool' = pool \cup {b}
           /\ UNCHANGED <<desc, slot, tdt, tdh, wb, txi, clean, order, cmdw, pend, kind>>

\* TxBatch fills descriptor txi (ring full when the next index is clean)
\* with a data descriptor of kind k; Split: stores its address word only.
\* The broken variant "ctx_buf" records the buffer in the slot of the
\* context descriptor before it as well (and would free it twice).
Post(b, k) == /\ b \in app /\ k \in DataKinds
              /\ DrvNext(txi) # clean
              /\ pend = N
              /\ IF Split
                    THEN /\ desc' = [desc EXCEPT ![txi].buf = b]
                         /\ cmdw' = [cmdw EXCEPT ![txi] = FALSE]
                         /\ pend' = txi
                    ELSE /\ desc' = [desc EXCEPT ![txi] = [buf |-> b, dd |-> FALSE]]
                         /\ cmdw' = [cmdw EXCEPT ![txi] = TRUE]
                         /\ UNCHANGED pend
              /\ slot' = IF Bug = "ctx_buf" /\ CtxOpen
                           THEN [slot EXCEPT ![txi] = b, ![(txi + N - 1) % N] = b]
                           ELSE [slot EXCEPT ![txi] = b]
              /\ app' = IF Bug = "double_post" THEN app ELSE app \ {b}
              /\ txi' = DrvNext(txi)
              /\ order' = Append(order, b)
              /\ kind' = [kind EXCEPT ![txi] = k]
              /\ UNCHANGED <<tdt, tdh, wb, clean, pool>>

\* TxBatch writes a context descriptor into slot txi for the data
\* descriptor it posts next (a packet to send, room for both).
\* (WriteCtx is the write itself, for the trace spec.)
WriteCtx == /\ "ctx" \in Kinds
            /\ DrvNext(txi) # clean /\ DrvNext(DrvNext(txi)) # clean
            /\ ~CtxOpen
            /\ desc' = [desc EXCEPT ![txi] = [buf |-> NoBuf, dd |-> FALSE]]
            /\ kind' = [kind EXCEPT ![txi] = "ctx"]
            /\ cmdw' = [cmdw EXCEPT ![txi] = TRUE]
            /\ txi' = DrvNext(txi)
            /\ UNCHANGED <<slot, tdt, tdh, wb, clean, pool, app, order, pend>>
PostCtx == app # {} /\ WriteCtx

\* Split: TxBatch stores the command word (length, EOP|RS, DD clear) of
\* the descriptor whose address it stored.
PostCmd == /\ Split /\ pend # N
           /\ desc' = [desc EXCEPT ![pend].dd = FALSE]
           /\ cmdw' = [cmdw EXCEPT ![pend] = TRUE]
           /\ pend' = N
           /\ UNCHANGED <<slot, tdt, tdh, wb, txi, clean, pool, app, order, kind>>

\* TxBatch writes TDT: every descriptor before txi now belongs to the device
\* (with no store due; the broken variant does not wait for it).
WriteTail == /\ tdt # txi
             /\ pend = N \/ Bug = "tail_before_cmd_word"
             /\ tdt' = txi
             /\ UNCHANGED <<desc, slot, tdh, wb, txi, clean, pool, app, order, cmdw, pend, kind>>

\* Broken variant: the tail covers slot txi before its descriptor is written.
WriteTailEarly == /\ Bug = "tail_before_desc"
                  /\ tdt = txi
                  /\ DrvNext(txi) # clean
                  /\ pend = N
                  /\ tdt' = DrvNext(txi)
                  /\ UNCHANGED <<desc, slot, tdh, wb, txi, clean, pool, app, order, cmdw, pend, kind>>

\* The device fetches descriptor tdh and reads its frame.
DevFetch == /\ tdh # tdt
            /\ tdh' = DevNext(tdh)
            /\ UNCHANGED <<desc, slot, tdt, wb, txi, clean, pool, app, order, cmdw, pend, kind>>

\* The device is done with the oldest fetched descriptor and writes DD back
\* into it if it has RS (a context or a descriptor without RS: nothing).
DevWriteBack == /\ wb # tdh
                /\ desc' = IF kind[wb] = "rs" THEN [desc EXCEPT ![wb].dd = TRUE] ELSE desc
                /\ wb' = DevNext(wb)
                /\ UNCHANGED <<slot, tdt, tdh, txi, clean, pool, app, order, cmdw, pend, kind>>

\* TX cleaning: once an RS descriptor at or after slot clean has DD, the
\* buffer of slot clean goes back to the pool; a context slot is reclaimed
\* together with the data descriptor after it (RecEnd), whose buffer goes
\* back.  (Not between the two stores of a descriptor: one thread does both.)
\* "reclaim_past_rs": the driver trusts any DD'ed RS descriptor in the
\* ring, also one it already reclaimed (a stale DD behind clean).
RecEnd == IF kind[clean] = "ctx" THEN DrvNext(clean) ELSE clean
Reclaim == /\ clean # txi
           /\ pend = N
           /\ RecEnd # txi
           /\ \/ DDFrom(clean)
              \/ Bug = "reclaim_without_dd"
              \/ Bug = "reclaim_past_rs" /\ {j \in Slots : kind[j] = "rs" /\ desc[j].dd} # {}
           /\ pool' = IF slot[RecEnd] = NoBuf THEN pool ELSE pool \cup {slot[RecEnd]}
           /\ slot' = [slot EXCEPT ![clean] = NoBuf, ![RecEnd] = NoBuf]
           /\ cmdw' = [cmdw EXCEPT ![clean] = FALSE, ![RecEnd] = FALSE]
           /\ clean' = DrvNext(RecEnd)
           /\ order' = Remove(order, slot[RecEnd])
           /\ UNCHANGED <<desc, tdt, tdh, wb, txi, app, pend, kind>>

Next == \/ \E b \in Bufs: Alloc(b) \/ Free(b) \/ \E k \in DataKinds: Post(b, k)
        \/ PostCtx \/ PostCmd \/ WriteTail \/ WriteTailEarly \/ DevFetch \/ DevWriteBack \/ Reclaim

Fairness == /\ WF_vars(WriteTail) /\ WF_vars(DevFetch) /\ WF_vars(DevWriteBack) /\ WF_vars(Reclaim)
            /\ WF_vars(PostCmd)

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(* Invariants *)

TypeOK == /\ desc \in [Slots -> [buf : Bufs \cup {NoBuf}, dd : BOOLEAN]]
          /\ slot \in [Slots -> Bufs \cup {NoBuf}]
          /\ {tdt, tdh, wb, txi, clean} \subseteq Slots
          /\ pool \subseteq Bufs /\ app \subseteq Bufs
          /\ \A k \in 1..Len(order): order[k] \in Bufs
          /\ cmdw \in [Slots -> BOOLEAN] /\ pend \in Slots \cup {N}
          /\ kind \in [Slots -> Kinds]

\* Mempool: every buffer is free, in exactly one ring slot, or held by the
\* application (no buffer lost or duplicated).
Conservation == \A b \in Bufs:
    (IF b \in pool THEN 1 ELSE 0) + (IF b \in app THEN 1 ELSE 0)
      + Cardinality({i \in Slots : slot[i] = b}) = 1

\* clean <= wb <= tdh <= tdt <= txi, cyclically.
IndexOrder == Dist(clean, wb) + Dist(wb, tdh) + Dist(tdh, tdt) + Dist(tdt, txi) = Dist(clean, txi)

\* Slots hold buffers exactly in [clean, txi) (but for contexts); their
\* descriptors point at them; DD is set exactly on the RS descriptors of
\* [clean, wb) (Split: but for the slot whose command word, holding DD, is
\* still to be stored).
DescriptorState == \A i \in Slots:
    /\ (slot[i] # NoBuf) = (InRange(clean, txi, i) /\ kind[i] # "ctx")
    /\ slot[i] # NoBuf => /\ desc[i].buf = slot[i]
                         /\ (i # pend => desc[i].dd = (kind[i] = "rs" /\ InRange(clean, wb, i)))

\* A context slot has no buffer, in the driver's record or the descriptor,
\* and never gets DD.
ContextNoBuf == \A i \in Slots : kind[i] = "ctx" => slot[i] = NoBuf /\ desc[i].buf = NoBuf /\ ~desc[i].dd

\* The driver reclaimed only descriptors covered by a DD'ed RS descriptor at
\* or after them: the last slot it reclaimed (clean - 1, never rewritten
\* while clean stays) is that RS descriptor, or the one covering it is still
\* in the ring, or nothing was reclaimed there yet.
ReclaimedCovered == LET last == (clean + N - 1) % N IN
    \/ DDFrom(clean)
    \/ kind[last] = "rs" /\ desc[last].dd
    \/ kind[last] = "rs" /\ desc[last].buf = NoBuf

\* The device has fetched only descriptors whose command word was stored.
FetchedComplete == \A i \in Slots: InRange(wb, tdh, i) => cmdw[i]

\* Completions in FIFO order: the ring, read from clean, is the post order.
FIFO == order = RingSeq(clean)

(* Action properties *)

\* The device touches only slots it owns: what it fetches is a buffer the
\* driver posted there, and it writes back only slots still in the ring.
\* (A context slot is the device's while it is in [clean, txi).)
OwnedCtx(i) == kind[i] = "ctx" /\ InRange(clean, txi, i)
DeviceTouchesOwnedOnly ==
    [][ /\ tdh' # tdh => (slot[tdh] # NoBuf \/ OwnedCtx(tdh)) /\ desc[tdh].buf = slot[tdh]
        /\ wb' # wb => slot[wb] # NoBuf \/ OwnedCtx(wb) ]_vars

\* The driver takes a buffer out of a slot only after DD on an RS
\* descriptor at or after it (the slot's own, when every descriptor has RS).
ReuseOnlyAfterDD == [][\A i \in Slots: (slot[i] # NoBuf /\ slot'[i] # slot[i]) => DDFrom(i)]_vars

(* Liveness: under fairness of the device (and of the driver's tail write  *)
(* and cleaning), every posted buffer eventually comes back, once an RS    *)
(* descriptor at or after it is posted (always, when every one has RS: a   *)
(* buffer behind the last RS descriptor waits for the next one).           *)
EventuallyReturned == \A b \in Bufs: (\E i \in Slots: slot[i] = b /\ RSFrom(i)) ~> (b \in pool \cup app)
=============================================================================
