//go:build !ixgbebugs

package models

import "github.com/verinic/verinic/ixgbe"

// driverBugs: without -tags ixgbebugs the driver has no bug switches, and a
// rig's NICs run the correct protocol (rigbugs_on_test.go has the real one).
type driverBugs struct{}

func withDriverBugs(c ixgbe.Config, _ driverBugs) ixgbe.Config { return c }
