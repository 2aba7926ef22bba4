------------------------------ MODULE Mempool ------------------------------
(***************************************************************************)
(* The packet-buffer pool of dma.Mempool: a LIFO stack of free buffer      *)
(* indexes and an in-use flag per buffer.  Alloc pops, Free pushes; a      *)
(* double free is refused (ErrDoubleFree) and changes nothing.  The        *)
(* broken variant "double_free" pushes anyway.  Go: models/mempool.go.     *)
(***************************************************************************)
EXTENDS Naturals, Sequences

CONSTANTS Bufs, Bug
ASSUME Bug \in {"none", "double_free"}

VARIABLES free, inUse
vars == <<free, inUse>>

\* Construction (NewMempool pushes every buffer once) is the same step as
\* Free, so the pool starts with every buffer out and Free fills it.
Init == /\ free = <<>>
        /\ inUse = [b \in Bufs |-> TRUE]

Alloc == /\ Len(free) > 0
         /\ inUse' = [inUse EXCEPT ![free[Len(free)]] = TRUE]
         /\ free' = SubSeq(free, 1, Len(free) - 1)

Free(b) == /\ inUse[b] \/ Bug = "double_free"
           /\ free' = Append(free, b)
           /\ inUse' = [inUse EXCEPT ![b] = FALSE]

Next == Alloc \/ \E b \in Bufs: Free(b)

Spec == Init /\ [][Next]_vars

TypeOK == /\ inUse \in [Bufs -> BOOLEAN]
          /\ \A k \in 1..Len(free): free[k] \in Bufs

NoDuplicates == \A j, k \in 1..Len(free): j # k => free[j] # free[k]
FreeIffNotInUse == \A b \in Bufs: (\E k \in 1..Len(free): free[k] = b) = ~inUse[b]
=============================================================================
