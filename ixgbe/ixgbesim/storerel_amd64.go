//go:build amd64 && !race

package ixgbesim

// storeRelease32 stores v at p with one aligned 32-bit MOV: on amd64 (TSO,
// Intel SDM vol. 3 8.2.2) a store is not reordered with earlier stores, so
// every write-back word stored before it is visible first to a reader that
// sees it, which is all the driver's atomic load of DD needs; being an
// assembly function it is also a compiler barrier. sync/atomic's
// StoreUint32 is an XCHG here, a locked read-modify-write that costs about
// as much as the rest of a write-back. Under the race detector
// (storerel_other.go) it is an atomic store, so that `go test -race` checks
// the ordering.
//
//go:noescape
func storeRelease32(p *uint32, v uint32)
