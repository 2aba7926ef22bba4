//go:build ixgbebugs

package models

import "github.com/verinic/verinic/ixgbe"

// driverBugs are the deliberate driver bugs a rig's NICs commit.
type driverBugs = ixgbe.Bug

func withDriverBugs(c ixgbe.Config, b driverBugs) ixgbe.Config { return ixgbe.WithBugs(c, b) }
