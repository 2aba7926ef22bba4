//go:build !ixgbebugs

package ixgbe

// bugsEnabled is false: this build cannot inject driver bugs (bugs.go).
const bugsEnabled = false
