package vfio

// guestEnv names the environment variable that the test guest's init sets to
// the PCI address of its e1000e NIC; the in-guest tests run only where it is
// set.
const guestEnv = "VERINIC_GUEST_NIC"
