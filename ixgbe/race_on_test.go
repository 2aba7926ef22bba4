//go:build race

package ixgbe

// raceEnabled reports whether the race detector is on (long tests shrink).
const raceEnabled = true
