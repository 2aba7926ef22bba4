package trace

import "encoding/base64"

// parseEventFast decodes an event line exactly as AppendEventJSON writes it,
// without reflection or allocation. Any other spelling (other field order,
// spaces, escapes) returns false and the reader falls back to encoding/json.
func parseEventFast(b []byte) (Event, bool) {
	var e Event
	p := 0
	lit := func(s string) bool {
		if len(b)-p < len(s) || string(b[p:p+len(s)]) != s {
			return false
		}
		p += len(s)
		return true
	}
	num := func(max uint64) (uint64, bool) {
		start := p
		if p+1 < len(b) && b[p] == '0' && b[p+1] >= '0' && b[p+1] <= '9' {
			return 0, false // JSON has no leading zeros
		}
		var v uint64
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			d := uint64(b[p] - '0')
			if v > (max-d)/10 {
				return 0, false
			}
			v = v*10 + d
			p++
		}
		return v, p > start
	}
	str := func() (string, bool) {
		start := p
		for p < len(b) && b[p] != '"' && b[p] != '\\' {
			p++
		}
		if p == len(b) || b[p] != '"' {
			return "", false
		}
		s := b[start:p]
		p++
		return string(s), true
	}
	var ok bool
	var v uint64
	if !lit(`{"seq":`) {
		return e, false
	}
	if e.Seq, ok = num(1<<64 - 1); !ok || !lit(`,"t":`) {
		return e, false
	}
	neg := lit("-")
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	if v, ok = num(limit); !ok {
		return e, false
	}
	e.T = int64(v)
	if neg {
		e.T = -e.T
	}
	if !lit(`,"kind":"`) {
		return e, false
	}
	ks, ok := str()
	if !ok {
		return e, false
	}
	if e.Kind, ok = KindFromString(ks); !ok || !lit(`,"dev":`) {
		return e, false
	}
	if v, ok = num(1<<16 - 1); !ok || !lit(`,"dir":"`) {
		return e, false
	}
	e.Dev = uint16(v)
	switch {
	case lit(`rx"`):
		e.Dir = RX
	case lit(`tx"`):
		e.Dir = TX
	default:
		return e, false
	}
	if !lit(`,"queue":`) {
		return e, false
	}
	if v, ok = num(1<<16 - 1); !ok || !lit(`,"index":`) {
		return e, false
	}
	e.Queue = uint16(v)
	if v, ok = num(1<<32 - 1); !ok || !lit(`,"len":`) {
		return e, false
	}
	e.Index = uint32(v)
	if v, ok = num(1<<32 - 1); !ok || !lit(`,"buf":"0x`) {
		return e, false
	}
	e.Len = uint32(v)
	start := p
	for p < len(b) && p-start <= 16 {
		c := b[p]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			goto done
		}
		e.Buf = e.Buf<<4 | uint64(d)
		p++
	}
done:
	if p == start || p-start > 16 || !lit(`"}`) || p != len(b) {
		return e, false
	}
	return e, true
}

// parseTCPEventFast decodes a TCP event line exactly as appendTCPEventJSON
// writes it, without reflection; any other spelling returns false and the
// reader falls back to encoding/json. Data (base64) is decoded into a new
// string.
func parseTCPEventFast(b []byte) (Event, bool) {
	var e Event
	p := 0
	lit := func(s string) bool {
		if len(b)-p < len(s) || string(b[p:p+len(s)]) != s {
			return false
		}
		p += len(s)
		return true
	}
	num := func(max uint64) (uint64, bool) {
		start := p
		if p+1 < len(b) && b[p] == '0' && b[p+1] >= '0' && b[p+1] <= '9' {
			return 0, false
		}
		var v uint64
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			d := uint64(b[p] - '0')
			if v > (max-d)/10 {
				return 0, false
			}
			v = v*10 + d
			p++
		}
		return v, p > start
	}
	signed := func() (int64, bool) {
		neg := lit("-")
		limit := uint64(1<<63 - 1)
		if neg {
			limit = 1 << 63
		}
		v, ok := num(limit)
		if neg {
			return -int64(v), ok
		}
		return int64(v), ok
	}
	hex := func() (uint64, bool) {
		start := p
		var v uint64
		for p < len(b) && p-start <= 16 {
			c := b[p]
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			default:
				return v, p > start && p-start <= 16
			}
			v = v<<4 | uint64(d)
			p++
		}
		return v, false
	}
	var ok bool
	var v uint64
	if !lit(`{"seq":`) {
		return e, false
	}
	if e.Seq, ok = num(1<<64 - 1); !ok || !lit(`,"t":`) {
		return e, false
	}
	if e.T, ok = signed(); !ok || !lit(`,"kind":"`) {
		return e, false
	}
	start := p
	for p < len(b) && b[p] != '"' {
		p++
	}
	if e.Kind, ok = KindFromString(string(b[start:p])); !ok || !e.Kind.IsTCP() || !lit(`","conn":`) {
		return e, false
	}
	fields := []struct {
		next string
		max  uint64
		dst  func(uint64)
	}{
		{`,"state":`, 1<<32 - 1, func(x uint64) { e.Conn = uint32(x) }},
		{`,"sn":`, 1<<8 - 1, func(x uint64) { e.State = uint8(x) }},
		{`,"an":`, 1<<32 - 1, func(x uint64) { e.TSeq = uint32(x) }},
		{`,"flags":`, 1<<32 - 1, func(x uint64) { e.TAck = uint32(x) }},
		{`,"wnd":`, 1<<8 - 1, func(x uint64) { e.Flags = uint8(x) }},
		{`,"len":`, 1<<32 - 1, func(x uint64) { e.Wnd = uint32(x) }},
		{`,"index":`, 1<<32 - 1, func(x uint64) { e.Len = uint32(x) }},
		{`,"queue":`, 1<<32 - 1, func(x uint64) { e.Index = uint32(x) }},
		{`,"buf":"0x`, 1<<16 - 1, func(x uint64) { e.Queue = uint16(x) }},
	}
	for _, f := range fields {
		if v, ok = num(f.max); !ok || !lit(f.next) {
			return e, false
		}
		f.dst(v)
	}
	if e.Buf, ok = hex(); !ok || !lit(`","aux":"0x`) {
		return e, false
	}
	if e.Aux, ok = hex(); !ok || !lit(`","call":`) {
		return e, false
	}
	if e.Call, ok = signed(); !ok {
		return e, false
	}
	if lit(`,"data":"`) {
		start := p
		for p < len(b) && b[p] != '"' {
			p++
		}
		raw := b[start:p]
		if !lit(`"`) {
			return e, false
		}
		d := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		n, err := base64.StdEncoding.Decode(d, raw)
		if err != nil || n == 0 {
			return e, false
		}
		e.Data = string(d[:n])
	}
	if !lit(`}`) || p != len(b) {
		return e, false
	}
	return e, true
}
