//go:build !ixgbebugs

package advring

// bugsEnabled is false: this build cannot inject driver bugs (bugs.go).
const bugsEnabled = false
