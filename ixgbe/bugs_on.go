//go:build ixgbebugs

package ixgbe

// bugsEnabled is true: built with -tags ixgbebugs, for the verification
// tests that show each deliberate driver bug is caught (bugs.go).
const bugsEnabled = true

// Bug is a set of deliberate ring-protocol errors for the driver to make.
// It exists only in builds with the ixgbebugs tag.
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

// WithBugs returns cfg with the driver told to commit bugs (0: none).
func WithBugs(cfg Config, bugs Bug) Config {
	cfg.bugs = bugs
	return cfg
}
