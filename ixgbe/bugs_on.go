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
)

// WithBugs returns cfg with the driver told to commit bugs (0: none).
func WithBugs(cfg Config, bugs Bug) Config {
	cfg.bugs = bugs
	return cfg
}
