//go:build !amd64 || race

package ixgbesim

import "sync/atomic"

// storeRelease32 is an atomic store: a release on every platform (STLR on
// arm64), and what the race detector sees as the synchronizing write.
func storeRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
