//go:build race

package ixgbesim

// raceEnabled: built with -race. See New: NoHugepages DMA memory then comes
// from the Go heap, which the race detector instruments.
const raceEnabled = true
