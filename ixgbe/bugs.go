package ixgbe

// Bug is a deliberate protocol error the driver can be told to make, so that
// the verification tests (models/, tla/, porcupine) can show that they catch
// it. Production code never sets Config.InjectBugs; each bug is a single,
// named deviation from the ring protocol of datasheet 7.1 and 7.2.
type Bug uint32

const (
	// BugReclaimWithoutDD: TX cleaning frees buffers without checking DD,
	// so a buffer can return to the pool while the device still reads it.
	BugReclaimWithoutDD Bug = 1 << iota
	// BugTailBeforeDescriptor: TxBatch writes TDT before it fills the
	// descriptors it publishes.
	BugTailBeforeDescriptor
	// BugDoublePost: TxBatch posts the first buffer of a batch twice.
	BugDoublePost
	// BugWrapOffByOne: ring index wrap-around uses N instead of N-1 as the
	// last index (the index reaches N before wrapping).
	BugWrapOffByOne
	// BugRefillOwnedSlot: RxBatch refills one descriptor past the last one
	// it processed, a slot the device still owns.
	BugRefillOwnedSlot
)

// Has reports whether b includes bug.
func (b Bug) Has(bug Bug) bool { return b&bug != 0 }
