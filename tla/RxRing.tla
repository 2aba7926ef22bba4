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
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS N, Bufs, NoBuf, Bug

ASSUME N \in Nat /\ N >= 2 /\ NoBuf \notin Bufs
ASSUME Bug \in {"none", "refill_owned_slot", "wrap_off_by_one"}

VARIABLES desc,   \* descriptor memory: [buf, dd] per slot
          slot,   \* the driver's record of the buffer in each slot
          rdt,    \* tail register: last descriptor given to the device
          rdh,    \* device head: next descriptor the device fills
          rxi,    \* driver: next slot to check for DD
          pool,   \* free buffers in the mempool
          app,    \* buffers handed up to the application
          order   \* history: buffers in the order they were posted, not yet handed up

vars == <<desc, slot, rdt, rdh, rxi, pool, app, order>>

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

\* The device receives a frame into the buffer at rdh and writes back DD.
DevReceive == /\ rdh # rdt
              /\ desc' = [desc EXCEPT ![rdh].dd = TRUE]
              /\ rdh' = DevNext(rdh)
              /\ UNCHANGED <<slot, rdt, rxi, pool, app, order>>

\* RxBatch sees DD on rxi and hands the buffer up.
HandUp == /\ slot[rxi] # NoBuf
          /\ desc[rxi].dd
          /\ app' = app \cup {slot[rxi]}
          /\ slot' = [slot EXCEPT ![rxi] = NoBuf]
          /\ order' = Remove(order, slot[rxi])
          /\ UNCHANGED <<desc, rdt, rdh, rxi, pool>>

\* RxBatch (or initialization) fills the empty slot rxi with buffer b.
Refill(b) == /\ b \in pool
             /\ slot[rxi] = NoBuf
             /\ desc' = [desc EXCEPT ![RefillSlot] = [buf |-> b, dd |-> FALSE]]
             /\ slot' = [slot EXCEPT ![RefillSlot] = b]
             /\ pool' = pool \ {b}
             /\ rxi' = DrvNext(rxi)
             /\ order' = Append(order, b)
             /\ UNCHANGED <<rdt, rdh, app>>

\* RxBatch writes RDT = the last slot it filled.
WriteTail == /\ Prev(rxi) # rdt
             /\ slot[Prev(rxi)] # NoBuf
             /\ rdt' = Prev(rxi)
             /\ UNCHANGED <<desc, slot, rdh, rxi, pool, app, order>>

\* The application frees a received buffer.
AppFree(b) == /\ b \in app
              /\ app' = app \ {b} /\ pool' = pool \cup {b}
              /\ UNCHANGED <<desc, slot, rdt, rdh, rxi, order>>

Next == \/ DevReceive \/ HandUp \/ WriteTail
        \/ \E b \in Bufs: Refill(b) \/ AppFree(b)

Fairness == /\ WF_vars(DevReceive) /\ WF_vars(HandUp) /\ WF_vars(WriteTail)
            /\ WF_vars(\E b \in Bufs: Refill(b)) /\ WF_vars(\E b \in Bufs: AppFree(b))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
TypeOK == /\ desc \in [Slots -> [buf : Bufs \cup {NoBuf}, dd : BOOLEAN]]
          /\ slot \in [Slots -> Bufs \cup {NoBuf}]
          /\ {rdt, rdh, rxi} \subseteq Slots
          /\ pool \subseteq Bufs /\ app \subseteq Bufs
          /\ \A k \in 1..Len(order): order[k] \in Bufs

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

\* Buffers are handed up in the order they were posted.
FIFO == order = RingSeq(rxi)

DeviceTouchesOwnedOnly ==
    [][rdh' # rdh => slot[rdh] # NoBuf /\ desc[rdh].buf = slot[rdh] /\ ~desc[rdh].dd]_vars

ReuseOnlyAfterDD == [][\A i \in Slots: (slot[i] # NoBuf /\ slot'[i] # slot[i]) => desc[i].dd]_vars

EventuallyReturned == \A b \in Bufs: (\E i \in Slots: slot[i] = b) ~> (b \in pool \cup app)
=============================================================================
