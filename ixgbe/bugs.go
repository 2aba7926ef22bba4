package ixgbe

// bug is a deliberate protocol error the driver can be told to make, so that
// the verification tests (models/, tla/, porcupine) can show that they catch
// it. Each bug is a single, named deviation from the ring protocol of
// datasheet 7.1 and 7.2. Bugs can be switched on only in a build with the
// ixgbebugs tag (bugs_on.go: ixgbe.Bug, ixgbe.WithBugs); in any other build
// bugsEnabled is false, has is constant false and the compiler drops the
// buggy paths, so production binaries carry neither the switches nor the code.
type bug uint32

const (
	// bugReclaimWithoutDD: TX cleaning frees buffers without checking DD,
	// so a buffer can return to the pool while the device still reads it.
	bugReclaimWithoutDD bug = 1 << iota
	// bugTailBeforeDescriptor: TxBatch writes TDT before it fills the
	// descriptors it publishes.
	bugTailBeforeDescriptor
	// bugDoublePost: TxBatch posts the first buffer of a batch twice.
	bugDoublePost
	// bugWrapOffByOne: ring index wrap-around uses N instead of N-1 as the
	// last index (the index reaches N before wrapping).
	bugWrapOffByOne
	// bugRefillOwnedSlot: RxBatch refills one descriptor past the last one
	// it processed, a slot the device still owns.
	bugRefillOwnedSlot
)

// has reports whether b includes any of the bugs in mask (always false
// without the ixgbebugs tag).
func (b bug) has(mask bug) bool { return bugsEnabled && b&mask != 0 }
