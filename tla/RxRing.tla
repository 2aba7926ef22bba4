------------------------------- MODULE RxRing -------------------------------
(***************************************************************************)
(* Ownership protocol of an 82599 receive descriptor ring between the      *)
(* driver and the device (datasheet 7.1.4 receive descriptor fetching,     *)
(* 7.1.5 write-back, 8.2.3.8.3 RDH / 8.2.3.8.4 RDT), with the mempool.     *)
(*                                                                         *)
(* The driver fills descriptor rxi with a fresh buffer (Refill) and        *)
(* separately moves the tail to the last filled descriptor (WriteTail):    *)
(* the device owns [rdh, rdt); rdh = rdt means the ring is full and        *)
(* arriving frames are dropped.  The device DMAs a frame into the buffer   *)
(* at rdh and writes back length and DD|EOP (DevReceive).  The driver      *)
(* hands a buffer up to the application only after DD (HandUp), then       *)
(* refills the same slot.  The ring starts empty: initialization is the    *)
(* same Refill and WriteTail steps.  The Go transcription is               *)
(* models/rxring.go.                                                       *)
(*                                                                         *)
(* With Split = TRUE the write-back and the driver's reads of it are       *)
(* separate steps.  The advanced receive write-back format (datasheet      *)
(* 7.1.6.2) holds, in its upper quadword, the status (DD, EOP; 7.1.6.2     *)
(* "Extended Status") and the packet length (PKT_LEN) in separate 32-bit   *)
(* words, so a device (or the simulator) may store them as two words, and  *)
(* a driver loads them as two words.  DevWriteLen stores the length word   *)
(* (wlen), DevWriteStatus the status word with DD|EOP (every frame fits    *)
(* one buffer here, so EOP is set with DD and not modelled apart); the     *)
(* device stores the length first (Dev = "len_first") or, as a variant,    *)
(* the status first ("status_first"), the length store then trailing the   *)
(* head.  The driver loads DD (ReadDD) and then the length (ReadLen); the  *)
(* broken driver (Bug = "len_before_dd") loads the length first.  rdd and  *)
(* rlen are what the driver has read of descriptor rxi: NoStaleLength says *)
(* it never holds DD together with a length not written for this frame.    *)
(* With Split = FALSE the write-back is the single DevReceive step (wlen   *)
(* then always equals dd, and rdd, rlen, lag keep their initial values),   *)
(* which is what the configs without "split" check.                        *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS N, Bufs, NoBuf, Bug, Split, Dev

ASSUME N \in Nat /\ N >= 2 /\ NoBuf \notin Bufs
ASSUME Bug \in {"none", "refill_owned_slot", "wrap_off_by_one", "len_before_dd"}
ASSUME Split \in BOOLEAN /\ Dev \in {"len_first", "status_first"}

VARIABLES desc,   \* descriptor memory: [buf, dd] per slot
          slot,   \* the driver's record of the buffer in each slot
          rdt,    \* tail register: last descriptor given to the device
          rdh,    \* device head: next descriptor the device fills
          rxi,    \* driver: next slot to check for DD
          pool,   \* free buffers in the mempool
          app,    \* buffers handed up to the application
          order,  \* history: buffers in the order they were posted, not yet handed up
          wlen,   \* per slot: the length word holds this frame's length
          lag,    \* status_first: the slot whose length store is still due, or N
          rdd,    \* the driver has read DD set on rxi
          rlen    \* what the driver read of rxi's length: "none", "stale" or "fresh"

vars == <<desc, slot, rdt, rdh, rxi, pool, app, order, wlen, lag, rdd, rlen>>
devVars == <<wlen, lag>>
drvVars == <<rdd, rlen>>

Slots == 0..(N-1)
DevNext(i) == (i + 1) % N
DrvNext(i) == IF Bug = "wrap_off_by_one" THEN (IF i = N THEN 0 ELSE i + 1) ELSE (i + 1) % N
Prev(i) == (i + N - 1) % N
Dist(a, b) == (b - a + N) % N
InRange(from, to, i) == Dist(from, i) < Dist(from, to)
Remove(s, b) == SelectSeq(s, LAMBDA x: x # b)
RingSeq(start) == SelectSeq([k \in 1..N |-> slot[(start + k - 1) % N]], LAMBDA x: x # NoBuf)
\* The slot Refill writes: rxi, or (broken variant) the one after it.
RefillSlot == IF Bug = "refill_owned_slot" THEN DrvNext(rxi) ELSE rxi

Init == /\ desc = [i \in Slots |-> [buf |-> NoBuf, dd |-> FALSE]]
        /\ slot = [i \in Slots |-> NoBuf]
        /\ rdt = 0 /\ rdh = 0 /\ rxi = 0
        /\ pool = Bufs /\ app = {} /\ order = <<>>
        /\ wlen = [i \in Slots |-> FALSE] /\ lag = N
        /\ rdd = FALSE /\ rlen = "none"

\* The device receives a frame into the buffer at rdh and writes back
\* length and DD|EOP in one step.
DevReceive == /\ ~Split
              /\ rdh # rdt
              /\ desc' = [desc EXCEPT ![rdh].dd = TRUE]
              /\ wlen' = [wlen EXCEPT ![rdh] = TRUE]
              /\ rdh' = DevNext(rdh)
              /\ UNCHANGED <<slot, rdt, rxi, pool, app, order, lag, rdd, rlen>>

\* Split: the device stores the length word of the frame at rdh ...
DevWriteLen == /\ Split
               /\ IF Dev = "len_first"
                     THEN /\ rdh # rdt /\ ~wlen[rdh] /\ ~desc[rdh].dd
                          /\ wlen' = [wlen EXCEPT ![rdh] = TRUE]
                          /\ UNCHANGED lag
                     ELSE /\ lag # N
                          /\ wlen' = [wlen EXCEPT ![lag] = TRUE]
                          /\ lag' = N
               /\ UNCHANGED <<desc, slot, rdt, rdh, rxi, pool, app, order, rdd, rlen>>

\* ... and the status word with DD|EOP, then advances its head.
DevWriteStatus == /\ Split
                  /\ rdh # rdt
                  /\ IF Dev = "len_first"
                        THEN wlen[rdh] /\ UNCHANGED lag
                        ELSE lag = N /\ lag' = rdh
                  /\ desc' = [desc EXCEPT ![rdh].dd = TRUE]
                  /\ rdh' = DevNext(rdh)
                  /\ UNCHANGED <<slot, rdt, rxi, pool, app, order, wlen, rdd, rlen>>

\* Split: RxBatch loads the status word of rxi and sees DD (a load that
\* sees DD clear changes nothing: the driver tries again later; the broken
\* driver then also forgets the length it loaded too early).
ReadDD == /\ Split
          /\ slot[rxi] # NoBuf /\ ~rdd
          /\ IF Bug = "len_before_dd" THEN rlen # "none" ELSE rlen = "none"
          /\ IF desc[rxi].dd
                THEN rdd' = TRUE /\ UNCHANGED rlen
                ELSE /\ Bug = "len_before_dd"
                     /\ rlen' = "none" /\ UNCHANGED rdd
          /\ UNCHANGED <<desc, slot, rdt, rdh, rxi, pool, app, order, wlen, lag>>

\* Split: RxBatch loads the length word of rxi (after DD; the broken
\* driver before).
ReadLen == /\ Split
           /\ slot[rxi] # NoBuf /\ rlen = "none"
           /\ IF Bug = "len_before_dd" THEN ~rdd ELSE rdd
           /\ rlen' = IF wlen[rxi] THEN "fresh" ELSE "stale"
           /\ UNCHANGED <<desc, slot, rdt, rdh, rxi, pool, app, order, wlen, lag, rdd>>

\* RxBatch sees DD on rxi (Split: has read DD and the length) and hands
\* the buffer up.
HandUp == /\ slot[rxi] # NoBuf
          /\ IF Split THEN rdd /\ rlen # "none" ELSE desc[rxi].dd
          /\ app' = app \cup {slot[rxi]}
          /\ slot' = [slot EXCEPT ![rxi] = NoBuf]
          /\ order' = Remove(order, slot[rxi])
          /\ rdd' = FALSE /\ rlen' = "none"
          /\ UNCHANGED <<desc, rdt, rdh, rxi, pool, wlen, lag>>

\* RxBatch (or initialization) fills the empty slot rxi with buffer b.
Refill(b) == /\ b \in pool
             /\ slot[rxi] = NoBuf
             /\ desc' = [desc EXCEPT ![RefillSlot] = [buf |-> b, dd |-> FALSE]]
             /\ slot' = [slot EXCEPT ![RefillSlot] = b]
             /\ pool' = pool \ {b}
             /\ rxi' = DrvNext(rxi)
             /\ order' = Append(order, b)
             /\ wlen' = [wlen EXCEPT ![RefillSlot] = FALSE]
             /\ UNCHANGED <<rdt, rdh, app, lag, rdd, rlen>>

\* RxBatch writes RDT = the last slot it filled.
WriteTail == /\ Prev(rxi) # rdt
             /\ slot[Prev(rxi)] # NoBuf
             /\ rdt' = Prev(rxi)
             /\ UNCHANGED <<desc, slot, rdh, rxi, pool, app, order, wlen, lag, rdd, rlen>>

\* The application frees a received buffer.
AppFree(b) == /\ b \in app
              /\ app' = app \ {b} /\ pool' = pool \cup {b}
              /\ UNCHANGED <<desc, slot, rdt, rdh, rxi, order, wlen, lag, rdd, rlen>>

Next == \/ DevReceive \/ HandUp \/ WriteTail
        \/ DevWriteLen \/ DevWriteStatus \/ ReadDD \/ ReadLen
        \/ \E b \in Bufs: Refill(b) \/ AppFree(b)

Fairness == /\ WF_vars(DevReceive) /\ WF_vars(HandUp) /\ WF_vars(WriteTail)
            /\ WF_vars(DevWriteLen) /\ WF_vars(DevWriteStatus) /\ WF_vars(ReadDD) /\ WF_vars(ReadLen)
            /\ WF_vars(\E b \in Bufs: Refill(b)) /\ WF_vars(\E b \in Bufs: AppFree(b))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
TypeOK == /\ desc \in [Slots -> [buf : Bufs \cup {NoBuf}, dd : BOOLEAN]]
          /\ slot \in [Slots -> Bufs \cup {NoBuf}]
          /\ {rdt, rdh, rxi} \subseteq Slots
          /\ pool \subseteq Bufs /\ app \subseteq Bufs
          /\ \A k \in 1..Len(order): order[k] \in Bufs
          /\ wlen \in [Slots -> BOOLEAN] /\ lag \in Slots \cup {N}
          /\ rdd \in BOOLEAN /\ rlen \in {"none", "stale", "fresh"}

Conservation == \A b \in Bufs:
    (IF b \in pool THEN 1 ELSE 0) + (IF b \in app THEN 1 ELSE 0)
      + Cardinality({i \in Slots : slot[i] = b}) = 1

\* rxi <= rdh <= rdt, cyclically.
IndexOrder == Dist(rxi, rdh) + Dist(rdh, rdt) = Dist(rxi, rdt)

\* Descriptors point at their slot's buffer; DD is set exactly on the filled
\* slots of [rxi, rdh); the empty slots are a run starting at rxi; every
\* slot the device owns holds a buffer.
DescriptorState == \A i \in Slots:
    /\ slot[i] # NoBuf => /\ desc[i].buf = slot[i]
                         /\ desc[i].dd = InRange(rxi, rdh, i)
    /\ slot[i] = NoBuf => \A j \in Slots: Dist(rxi, j) <= Dist(rxi, i) => slot[j] = NoBuf
    /\ InRange(rdh, rdt, i) => slot[i] # NoBuf

\* The driver never holds DD of rxi together with a length that was not
\* written back for this frame (it would hand up a stale length).
NoStaleLength == rdd /\ rlen # "none" => rlen = "fresh"

\* Buffers are handed up in the order they were posted.
FIFO == order = RingSeq(rxi)

DeviceTouchesOwnedOnly ==
    [][rdh' # rdh => slot[rdh] # NoBuf /\ desc[rdh].buf = slot[rdh] /\ ~desc[rdh].dd]_vars

ReuseOnlyAfterDD == [][\A i \in Slots: (slot[i] # NoBuf /\ slot'[i] # slot[i]) => desc[i].dd]_vars

EventuallyReturned == \A b \in Bufs: (\E i \in Slots: slot[i] = b) ~> (b \in pool \cup app)
=============================================================================
