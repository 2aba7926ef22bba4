//go:build !amd64

package vfio

import "sync/atomic"

// mmioStore32 stores v at p. Elsewhere than amd64 an atomic store is a plain
// store with release ordering (STLR on arm64), which device memory accepts.
func mmioStore32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
