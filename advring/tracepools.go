package advring

import (
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// TracePool describes pool p's buffer grid for a trace header (the pool
// belongs to device dev: its driver's RX pool, or an application pool of
// frames sent on it), so that checkers can place every address a ring
// carries on a buffer (trace/SCHEMA.md, "pools").
func TracePool(dev uint16, p *dma.Mempool) trace.PoolInfo {
	base, stride, perPage, page := p.Layout()
	return trace.PoolInfo{Dev: dev, Name: p.Name(), Base: trace.Hex64(base), Stride: uint32(stride), Count: uint32(p.Size()),
		Headroom: uint32(p.Headroom()), Size: uint32(p.BufSize()), PerPage: uint32(perPage), Page: uint32(page)}
}

// TracePools describes the port's receive pools, one per RX queue, as
// those of trace device number dev.
func (p *Port) TracePools(dev uint16) []trace.PoolInfo {
	var ps []trace.PoolInfo
	for _, q := range p.Rx {
		ps = append(ps, TracePool(dev, q.pool))
	}
	return ps
}
