//go:build ixgbebugs

package advring

// bugsEnabled is true: built with -tags ixgbebugs, for the verification
// tests that show each deliberate driver bug is caught (bugs.go).
const bugsEnabled = true

// Bug is a set of deliberate ring-protocol errors for the driver to make.
// It exists only in builds with the ixgbebugs tag (the tag keeps the name
// of the driver it was written for).
type Bug = bug

// The bugs (bugs.go describes each).
const (
	BugReclaimWithoutDD     = bugReclaimWithoutDD
	BugTailBeforeDescriptor = bugTailBeforeDescriptor
	BugDoublePost           = bugDoublePost
	BugWrapOffByOne         = bugWrapOffByOne
	BugRefillOwnedSlot      = bugRefillOwnedSlot
	BugLenBeforeDD          = bugLenBeforeDD
	BugLenMinusFCS          = bugLenMinusFCS
	BugRxAddrNoHeadroom     = bugRxAddrNoHeadroom
	BugRefillHandedUp       = bugRefillHandedUp
	BugRxTailEqualsHead     = bugRxTailEqualsHead
	BugLostTailWrite        = bugLostTailWrite
	BugCleanOffByOne        = bugCleanOffByOne
	BugDoubleFreeNow        = bugDoubleFreeNow
	BugDoubleFreeLater      = bugDoubleFreeLater
	BugReclaimWhenFull      = bugReclaimWhenFull
)

// WithBugs returns c with the queues made from it told to commit bugs
// (0: none).
func WithBugs(c Config, bugs Bug) Config {
	c.bugs = bugs
	return c
}
