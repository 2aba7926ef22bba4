//go:build amd64 || arm64

package advring

// The driver builds for amd64 and arm64 only: its data path relies on how
// those architectures order memory accesses between the CPU and a device
// that reads and writes the same memory by DMA.
//
//   - Descriptors are written with plain stores, and the tail register
//     write is the one ordering point that publishes them to the device
//     (the argument, per architecture, is the comment on ring.setDesc in
//     ring.go). On amd64 stores are not reordered with older stores (TSO),
//     so the MMIO store leaves after the ring stores; on arm64 the register
//     store is a store-release (STLR), ordered after every earlier access
//     for every observer.
//   - Write-backs are read after an atomic (acquire) load of DD: on amd64
//     loads are not reordered with older loads; on arm64 the load is an
//     LDAR, so the words read after it are not read before it.
//   - The device memory (the BAR) is reached through 32-bit atomic loads
//     and stores of the mapped region (vfio), which both architectures
//     perform as single, untorn accesses.
//
// Other architectures (386, arm, riscv64, ppc64le, s390x, loong64...) have
// weaker or different guarantees (ppc64le and riscv64 need explicit
// fences before an MMIO doorbell, as Linux's writel has) and are not
// supported: arch_other.go makes the build fail with a message saying so,
// rather than producing a driver that loses descriptors.
const archSupported = true
