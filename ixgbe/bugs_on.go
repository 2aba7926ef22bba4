//go:build ixgbebugs

package ixgbe

import "github.com/verinic/verinic/advring"

// Bug is a set of deliberate ring-protocol errors for the driver to make
// (advring.Bug: the ring engine commits them, advring/bugs.go describes
// each). It exists only in builds with the ixgbebugs tag.
type Bug = advring.Bug

// ringBugs is the type of Config.bugs: the engine's bug set in this build.
type ringBugs = advring.Bug

// The bugs (advring/bugs.go describes each).
const (
	BugReclaimWithoutDD     = advring.BugReclaimWithoutDD
	BugTailBeforeDescriptor = advring.BugTailBeforeDescriptor
	BugDoublePost           = advring.BugDoublePost
	BugWrapOffByOne         = advring.BugWrapOffByOne
	BugRefillOwnedSlot      = advring.BugRefillOwnedSlot
	BugLenBeforeDD          = advring.BugLenBeforeDD
	BugLenMinusFCS          = advring.BugLenMinusFCS
	BugRxAddrNoHeadroom     = advring.BugRxAddrNoHeadroom
	BugRefillHandedUp       = advring.BugRefillHandedUp
	BugRxTailEqualsHead     = advring.BugRxTailEqualsHead
	BugLostTailWrite        = advring.BugLostTailWrite
	BugCleanOffByOne        = advring.BugCleanOffByOne
	BugDoubleFreeNow        = advring.BugDoubleFreeNow
	BugDoubleFreeLater      = advring.BugDoubleFreeLater
	BugReclaimWhenFull      = advring.BugReclaimWhenFull
)

// WithBugs returns cfg with the driver told to commit bugs (0: none).
func WithBugs(cfg Config, bugs Bug) Config {
	cfg.bugs = bugs
	return cfg
}

// withRingBugs passes the configured bugs on to the engine.
func withRingBugs(c advring.Config, b ringBugs) advring.Config { return advring.WithBugs(c, b) }
