//go:build !(amd64 || arm64)

package advring

// The driver's MMIO/DMA ordering is argued for amd64 and arm64 only
// (arch.go). This identifier is undefined on purpose: the build fails here,
// with this line in the compiler's message.
var _ = advring_supports_only_amd64_and_arm64_see_arch_go
