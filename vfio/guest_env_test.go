package vfio

import "github.com/verinic/verinic/internal/guest"

// guestEnv names the environment variable that the test guest's init sets to
// the PCI address of its first e1000e; the in-guest tests run only where it
// is set. guestNICsEnv lists all the guest's e1000es.
const (
	guestEnv     = guest.NICEnv
	guestNICsEnv = guest.NICsEnv
)
