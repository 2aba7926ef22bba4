//go:build !race

package ixgbesim

const raceEnabled = false
