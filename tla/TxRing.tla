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
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS N,      \* descriptors in the ring
          Bufs,   \* the mempool's buffers
          NoBuf,  \* "no buffer" marker, not in Bufs
          Bug,    \* "none" or the name of a broken variant
          Split   \* the descriptor write as two stores

ASSUME N \in Nat /\ N >= 2 /\ NoBuf \notin Bufs
ASSUME Bug \in {"none", "reclaim_without_dd", "tail_before_desc", "double_post", "wrap_off_by_one",
                "tail_before_cmd_word"}
ASSUME Split \in BOOLEAN

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
          pend    \* Split: the slot whose command-word store is due, or N

vars == <<desc, slot, tdt, tdh, wb, txi, clean, pool, app, order, cmdw, pend>>

Slots == 0..(N-1)
DevNext(i) == (i + 1) % N
\* The driver's wrap-around; the broken variant lets the index reach N.
DrvNext(i) == IF Bug = "wrap_off_by_one" THEN (IF i = N THEN 0 ELSE i + 1) ELSE (i + 1) % N
Dist(a, b) == (b - a + N) % N
InRange(from, to, i) == Dist(from, i) < Dist(from, to)
Remove(s, b) == SelectSeq(s, LAMBDA x: x # b)
RingSeq(start) == SelectSeq([k \in 1..N |-> slot[(start + k - 1) % N]], LAMBDA x: x # NoBuf)

Init == /\ desc = [i \in Slots |-> [buf |-> NoBuf, dd |-> FALSE]]
        /\ slot = [i \in Slots |-> NoBuf]
        /\ tdt = 0 /\ tdh = 0 /\ wb = 0 /\ txi = 0 /\ clean = 0
        /\ pool = Bufs /\ app = {} /\ order = <<>>
        /\ cmdw = [i \in Slots |-> FALSE] /\ pend = N

\* The application takes a buffer from the mempool and builds a frame in it.
Alloc(b) == /\ b \in pool
            /\ pool' = pool \ {b} /\ app' = app \cup {b}
            /\ UNCHANGED <<desc, slot, tdt, tdh, wb, txi, clean, order, cmdw, pend>>

\* The application frees a buffer it did not send.
Free(b) == /\ b \in app
           /\ app' = app \ {b} /\ pool' = pool \cup {b}
           /\ UNCHANGED <<desc, slot, tdt, tdh, wb, txi, clean, order, cmdw, pend>>

\* TxBatch fills descriptor txi (ring full when the next index is clean);
\* Split: stores its address word only.
Post(b) == /\ b \in app
           /\ DrvNext(txi) # clean
           /\ pend = N
           /\ IF Split
                 THEN /\ desc' = [desc EXCEPT ![txi].buf = b]
                      /\ cmdw' = [cmdw EXCEPT ![txi] = FALSE]
                      /\ pend' = txi
                 ELSE /\ desc' = [desc EXCEPT ![txi] = [buf |-> b, dd |-> FALSE]]
                      /\ cmdw' = [cmdw EXCEPT ![txi] = TRUE]
                      /\ UNCHANGED pend
           /\ slot' = [slot EXCEPT ![txi] = b]
           /\ app' = IF Bug = "double_post" THEN app ELSE app \ {b}
           /\ txi' = DrvNext(txi)
           /\ order' = Append(order, b)
           /\ UNCHANGED <<tdt, tdh, wb, clean, pool>>

\* Split: TxBatch stores the command word (length, EOP|RS, DD clear) of
\* the descriptor whose address it stored.
PostCmd == /\ Split /\ pend # N
           /\ desc' = [desc EXCEPT ![pend].dd = FALSE]
           /\ cmdw' = [cmdw EXCEPT ![pend] = TRUE]
           /\ pend' = N
           /\ UNCHANGED <<slot, tdt, tdh, wb, txi, clean, pool, app, order>>

\* TxBatch writes TDT: every descriptor before txi now belongs to the device
\* (with no store due; the broken variant does not wait for it).
WriteTail == /\ tdt # txi
             /\ pend = N \/ Bug = "tail_before_cmd_word"
             /\ tdt' = txi
             /\ UNCHANGED <<desc, slot, tdh, wb, txi, clean, pool, app, order, cmdw, pend>>

\* Broken variant: the tail covers slot txi before its descriptor is written.
WriteTailEarly == /\ Bug = "tail_before_desc"
                  /\ tdt = txi
                  /\ DrvNext(txi) # clean
                  /\ pend = N
                  /\ tdt' = DrvNext(txi)
                  /\ UNCHANGED <<desc, slot, tdh, wb, txi, clean, pool, app, order, cmdw, pend>>

\* The device fetches descriptor tdh and reads its frame.
DevFetch == /\ tdh # tdt
            /\ tdh' = DevNext(tdh)
            /\ UNCHANGED <<desc, slot, tdt, wb, txi, clean, pool, app, order, cmdw, pend>>

\* The device writes DD back into the oldest fetched descriptor.
DevWriteBack == /\ wb # tdh
                /\ desc' = [desc EXCEPT ![wb].dd = TRUE]
                /\ wb' = DevNext(wb)
                /\ UNCHANGED <<slot, tdt, tdh, txi, clean, pool, app, order, cmdw, pend>>

\* TX cleaning: after DD, the buffer of slot clean goes back to the pool.
\* (Not between the two stores of a descriptor: one thread does both.)
Reclaim == /\ clean # txi
           /\ pend = N
           /\ desc[clean].dd \/ Bug = "reclaim_without_dd"
           /\ pool' = pool \cup {slot[clean]}
           /\ slot' = [slot EXCEPT ![clean] = NoBuf]
           /\ cmdw' = [cmdw EXCEPT ![clean] = FALSE]
           /\ clean' = DrvNext(clean)
           /\ order' = Remove(order, slot[clean])
           /\ UNCHANGED <<desc, tdt, tdh, wb, txi, app, pend>>

Next == \/ \E b \in Bufs: Alloc(b) \/ Free(b) \/ Post(b)
        \/ PostCmd \/ WriteTail \/ WriteTailEarly \/ DevFetch \/ DevWriteBack \/ Reclaim

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

\* Mempool: every buffer is free, in exactly one ring slot, or held by the
\* application (no buffer lost or duplicated).
Conservation == \A b \in Bufs:
    (IF b \in pool THEN 1 ELSE 0) + (IF b \in app THEN 1 ELSE 0)
      + Cardinality({i \in Slots : slot[i] = b}) = 1

\* clean <= wb <= tdh <= tdt <= txi, cyclically.
IndexOrder == Dist(clean, wb) + Dist(wb, tdh) + Dist(tdh, tdt) + Dist(tdt, txi) = Dist(clean, txi)

\* Slots hold buffers exactly in [clean, txi); their descriptors point at
\* them; DD is set exactly on [clean, wb) (Split: but for the slot whose
\* command word, holding DD, is still to be stored).
DescriptorState == \A i \in Slots:
    /\ (slot[i] # NoBuf) = InRange(clean, txi, i)
    /\ slot[i] # NoBuf => /\ desc[i].buf = slot[i]
                         /\ (i # pend => desc[i].dd = InRange(clean, wb, i))

\* The device has fetched only descriptors whose command word was stored.
FetchedComplete == \A i \in Slots: InRange(wb, tdh, i) => cmdw[i]

\* Completions in FIFO order: the ring, read from clean, is the post order.
FIFO == order = RingSeq(clean)

(* Action properties *)

\* The device touches only slots it owns: what it fetches is a buffer the
\* driver posted there, and it writes back only slots still in the ring.
DeviceTouchesOwnedOnly ==
    [][ /\ tdh' # tdh => slot[tdh] # NoBuf /\ desc[tdh].buf = slot[tdh]
        /\ wb' # wb => slot[wb] # NoBuf ]_vars

\* The driver takes a buffer out of a slot only after DD.
ReuseOnlyAfterDD == [][\A i \in Slots: (slot[i] # NoBuf /\ slot'[i] # slot[i]) => desc[i].dd]_vars

(* Liveness: under fairness of the device (and of the driver's tail write  *)
(* and cleaning), every posted buffer eventually comes back.              *)
EventuallyReturned == \A b \in Bufs: (\E i \in Slots: slot[i] = b) ~> (b \in pool \cup app)
=============================================================================
