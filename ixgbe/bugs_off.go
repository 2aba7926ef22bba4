//go:build !ixgbebugs

package ixgbe

import "github.com/verinic/verinic/advring"

// ringBugs is the type of Config.bugs. Without the ixgbebugs tag the engine
// has no bug switches (advring/bugs.go): the field is never set and never
// passed on.
type ringBugs = uint32

// withRingBugs returns c unchanged: this build cannot inject driver bugs.
func withRingBugs(c advring.Config, _ ringBugs) advring.Config { return c }
