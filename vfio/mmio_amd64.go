package vfio

// mmioStore32 stores v at p with a single aligned 32-bit MOV, as Linux's
// writel does on x86. It is atomic (an aligned 32-bit store is single-copy
// atomic), and it is ordered after every earlier store of this CPU (x86 keeps
// stores in program order, and a store to uncached memory leaves the store
// buffer after those before it), so descriptors written before a tail
// register write reach memory first. Being an assembly function, it is also
// a compiler barrier.
//
// sync/atomic's StoreUint32 is an XCHG on amd64: a locked read-modify-write,
// which on device memory reads the register (a side effect on clear-on-read
// registers) and takes a bus lock, which PCIe endpoints do not support and
// recent kernels trap and rate-limit (split-lock / bus-lock detection).
//
//go:noescape
func mmioStore32(p *uint32, v uint32)
