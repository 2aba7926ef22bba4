package trace

// Application events bracket TxBatch and RxBatch calls so that porcupine can
// check the frames' path as a FIFO queue (models.CheckWireFIFO). The
// application, which knows each frame's tag (a value unique per frame that
// it carries in the payload), records them around its calls:
//
//	rec.AppCall(trace.TX, dev, q)
//	n, err := nic.TxBatch(q, pkts)
//	rec.AppReturn(trace.TX, dev, q, tags[:n])
//
// Like Record, both do nothing on a nil recorder and never allocate.

// AppCall records the start of a TxBatch (dir TX) or RxBatch (dir RX) call.
func (r *Recorder) AppCall(dir uint8, dev, queue uint16) {
	if r == nil {
		return
	}
	k := AppCallRx
	if dir == TX {
		k = AppCallTx
	}
	r.Record(Event{Kind: k, Dir: dir, Dev: dev, Queue: queue})
}

// AppReturn records the frames a call accepted (TX) or returned (RX), by
// tag, then the call's return.
func (r *Recorder) AppReturn(dir uint8, dev, queue uint16, tags []uint64) {
	if r == nil {
		return
	}
	for _, t := range tags {
		r.Record(Event{Kind: AppPacket, Dir: dir, Dev: dev, Queue: queue, Buf: t})
	}
	k := AppRetRx
	if dir == TX {
		k = AppRetTx
	}
	r.Record(Event{Kind: k, Dir: dir, Dev: dev, Queue: queue, Len: uint32(len(tags))})
}
