package trace

import "encoding/base64"

// lineScanner reads an event line exactly as the writer spells it. Each
// method consumes what it recognises and reports whether it did; a caller
// gives up at the first false (the reader then falls back to
// encoding/json).
type lineScanner struct {
	b []byte
	p int
}

// lit consumes s.
func (l *lineScanner) lit(s string) bool {
	if len(l.b)-l.p < len(s) || string(l.b[l.p:l.p+len(s)]) != s {
		return false
	}
	l.p += len(s)
	return true
}

// num consumes a decimal number of at most max (no leading zeros, as JSON).
func (l *lineScanner) num(max uint64) (uint64, bool) {
	start := l.p
	if l.p+1 < len(l.b) && l.b[l.p] == '0' && l.b[l.p+1] >= '0' && l.b[l.p+1] <= '9' {
		return 0, false
	}
	var v uint64
	for l.p < len(l.b) && l.b[l.p] >= '0' && l.b[l.p] <= '9' {
		d := uint64(l.b[l.p] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
		l.p++
	}
	return v, l.p > start
}

// signed consumes a decimal int64.
func (l *lineScanner) signed() (int64, bool) {
	neg := l.lit("-")
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	v, ok := l.num(limit)
	if neg {
		return -int64(v), ok
	}
	return int64(v), ok
}

// hex consumes 1 to 16 lower-case hexadecimal digits.
func (l *lineScanner) hex() (uint64, bool) {
	start := l.p
	var v uint64
	for l.p < len(l.b) {
		c := l.b[l.p]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return v, l.p > start && l.p-start <= 16
		}
		if l.p-start == 16 {
			return 0, false
		}
		v = v<<4 | uint64(d)
		l.p++
	}
	return v, false
}

// str consumes a string's contents up to its closing quote (no escapes)
// and the quote.
func (l *lineScanner) str() ([]byte, bool) {
	start := l.p
	for l.p < len(l.b) && l.b[l.p] != '"' && l.b[l.p] != '\\' {
		l.p++
	}
	if l.p == len(l.b) || l.b[l.p] != '"' {
		return nil, false
	}
	s := l.b[start:l.p]
	l.p++
	return s, true
}

// end reports whether the line ends with s.
func (l *lineScanner) end(s string) bool { return l.lit(s) && l.p == len(l.b) }

// parseEventFast decodes an event line exactly as AppendEventJSON writes it,
// without reflection or allocation. Any other spelling (other field order,
// spaces, escapes) returns false and the reader falls back to encoding/json.
func parseEventFast(b []byte) (Event, bool) {
	var e Event
	l := lineScanner{b: b}
	var ok bool
	var v uint64
	if !l.lit(`{"seq":`) {
		return e, false
	}
	if e.Seq, ok = l.num(1<<64 - 1); !ok || !l.lit(`,"t":`) {
		return e, false
	}
	if e.T, ok = l.signed(); !ok || !l.lit(`,"kind":"`) {
		return e, false
	}
	ks, ok := l.str()
	if !ok {
		return e, false
	}
	if e.Kind, ok = KindFromString(string(ks)); !ok || !l.lit(`,"dev":`) {
		return e, false
	}
	if v, ok = l.num(1<<16 - 1); !ok || !l.lit(`,"dir":"`) {
		return e, false
	}
	e.Dev = uint16(v)
	switch {
	case l.lit(`rx"`):
		e.Dir = RX
	case l.lit(`tx"`):
		e.Dir = TX
	default:
		return e, false
	}
	if !l.lit(`,"queue":`) {
		return e, false
	}
	if v, ok = l.num(1<<16 - 1); !ok || !l.lit(`,"index":`) {
		return e, false
	}
	e.Queue = uint16(v)
	if v, ok = l.num(1<<32 - 1); !ok || !l.lit(`,"len":`) {
		return e, false
	}
	e.Index = uint32(v)
	if v, ok = l.num(1<<32 - 1); !ok || !l.lit(`,"buf":"0x`) {
		return e, false
	}
	e.Len = uint32(v)
	if e.Buf, ok = l.hex(); !ok {
		return e, false
	}
	if l.end(`"}`) {
		return e, true
	}
	// Version 3: aux (hex); a line with a detail takes the slow path.
	if !l.lit(`","aux":"0x`) {
		return e, false
	}
	if e.Aux, ok = l.hex(); !ok || !l.end(`"}`) {
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
	l := lineScanner{b: b}
	var ok bool
	if !l.lit(`{"seq":`) {
		return e, false
	}
	if e.Seq, ok = l.num(1<<64 - 1); !ok || !l.lit(`,"t":`) {
		return e, false
	}
	if e.T, ok = l.signed(); !ok || !l.lit(`,"kind":"`) {
		return e, false
	}
	ks, ok := l.str()
	if !ok {
		return e, false
	}
	if e.Kind, ok = KindFromString(string(ks)); !ok || !e.Kind.IsTCP() {
		return e, false
	}
	// The numeric fields, in the writer's order: name, bound, destination.
	var conn, state, sn, an, flags, wnd, length, index, queue uint64
	for _, f := range [...]struct {
		name string
		max  uint64
		dst  *uint64
	}{
		{`,"conn":`, 1<<32 - 1, &conn}, {`,"state":`, 1<<8 - 1, &state}, {`,"sn":`, 1<<32 - 1, &sn},
		{`,"an":`, 1<<32 - 1, &an}, {`,"flags":`, 1<<8 - 1, &flags}, {`,"wnd":`, 1<<32 - 1, &wnd},
		{`,"len":`, 1<<32 - 1, &length}, {`,"index":`, 1<<32 - 1, &index}, {`,"queue":`, 1<<16 - 1, &queue},
	} {
		if !l.lit(f.name) {
			return e, false
		}
		if *f.dst, ok = l.num(f.max); !ok {
			return e, false
		}
	}
	e.Conn, e.State, e.TSeq, e.TAck = uint32(conn), uint8(state), uint32(sn), uint32(an)
	e.Flags, e.Wnd, e.Len, e.Index, e.Queue = uint8(flags), uint32(wnd), uint32(length), uint32(index), uint16(queue)
	if !l.lit(`,"buf":"0x`) {
		return e, false
	}
	if e.Buf, ok = l.hex(); !ok || !l.lit(`","aux":"0x`) {
		return e, false
	}
	if e.Aux, ok = l.hex(); !ok || !l.lit(`","call":`) {
		return e, false
	}
	if e.Call, ok = l.signed(); !ok {
		return e, false
	}
	if l.lit(`,"data":"`) {
		raw, ok := l.str()
		if !ok {
			return e, false
		}
		d := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		n, err := base64.StdEncoding.Decode(d, raw)
		if err != nil || n == 0 {
			return e, false
		}
		e.Data = string(d[:n])
	}
	if !l.end(`}`) {
		return e, false
	}
	return e, true
}
