package ixgbe

import (
	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// TracePool describes pool p's buffer grid for a trace header
// (advring.TracePool).
func TracePool(dev uint16, p *dma.Mempool) trace.PoolInfo { return advring.TracePool(dev, p) }

// TracePools describes the NIC's receive pools, one per RX queue, as
// those of its trace device number (Config.DevID).
func (n *NIC) TracePools() []trace.PoolInfo { return n.port.TracePools(n.cfg.DevID) }
