// Package demux maps the addresses of a received transport packet to the
// endpoint (socket) that should get it. Keys are (protocol, local address,
// local port, remote address, remote port); an unconnected endpoint leaves
// the remote half zero and a wildcard-bound one the local address too.
// Lookup prefers the most specific match: connected 4-tuple, then bound
// address and port, then port on any address (RFC 768 and RFC 9293 leave the
// choice to the host; this is Linux's order for non-reuseport sockets).
//
// ICMP echo sockets use the echo identifier as their local port, and TCP
// will keep listeners under (local, port) keys and connections under
// 4-tuples in the same table type.
//
// A Table is safe for concurrent use: poll loops look up under a read lock,
// applications bind and close under the write lock. Lookups allocate
// nothing.
package demux

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
)

// Key identifies an endpoint.
type Key struct {
	Proto      uint8
	LocalAddr  netip.Addr // zero: any local address
	LocalPort  uint16
	RemoteAddr netip.Addr // zero: not connected
	RemotePort uint16
}

// norm makes unspecified addresses (0.0.0.0) the zero Addr.
func norm(a netip.Addr) netip.Addr {
	if !a.IsValid() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Normalize returns k with unspecified addresses zeroed.
func (k Key) Normalize() Key {
	k.LocalAddr = norm(k.LocalAddr)
	k.RemoteAddr = norm(k.RemoteAddr)
	return k
}

func (k Key) String() string {
	local := "*"
	if k.LocalAddr.IsValid() {
		local = k.LocalAddr.String()
	}
	s := fmt.Sprintf("proto %d %s:%d", k.Proto, local, k.LocalPort)
	if k.RemoteAddr.IsValid() {
		s += fmt.Sprintf(" <-> %s:%d", k.RemoteAddr, k.RemotePort)
	}
	return s
}

// ErrAddrInUse is returned when a binding conflicts with another. It wraps
// syscall.EADDRINUSE, as the standard library's error does.
var ErrAddrInUse = fmt.Errorf("address already in use: %w", syscall.EADDRINUSE)

// ErrNoPorts is returned when every ephemeral port is taken.
var ErrNoPorts = errors.New("no free ephemeral port")

// Ephemeral port range: Linux's default net.ipv4.ip_local_port_range.
const (
	EphemeralFirst = 32768
	EphemeralLast  = 60999
)

type protoPort struct {
	proto uint8
	port  uint16
}

// Table maps keys to endpoints of type E.
type Table[E comparable] struct {
	mu      sync.RWMutex
	entries map[Key]E
	ports   map[protoPort][]Key
	next    map[uint8]uint16 // next ephemeral port to try, per protocol
}

// NewTable returns an empty table.
func NewTable[E comparable]() *Table[E] {
	return &Table[E]{entries: map[Key]E{}, ports: map[protoPort][]Key{}, next: map[uint8]uint16{}}
}

// Lookup returns the endpoint for a packet of proto from remote to local.
func (t *Table[E]) Lookup(proto uint8, local netip.Addr, localPort uint16, remote netip.Addr, remotePort uint16) (E, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e, ok := t.entries[Key{proto, local, localPort, remote, remotePort}]; ok {
		return e, true
	}
	if e, ok := t.entries[Key{Proto: proto, LocalAddr: local, LocalPort: localPort}]; ok {
		return e, true
	}
	e, ok := t.entries[Key{Proto: proto, LocalPort: localPort}]
	return e, ok
}

// Get returns the endpoint stored under exactly k.
func (t *Table[E]) Get(k Key) (E, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.entries[k.Normalize()]
	return e, ok
}

// Len returns the number of entries.
func (t *Table[E]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// Endpoints returns every endpoint in the table (a snapshot).
func (t *Table[E]) Endpoints() []E {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]E, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	return out
}

// conflicts reports whether binding k would clash with an existing binding
// other than except: same protocol and port, and the local addresses equal
// or either of them any (bind(2) without SO_REUSEADDR).
func (t *Table[E]) conflicts(k Key, except Key) bool {
	for _, o := range t.ports[protoPort{k.Proto, k.LocalPort}] {
		if o == except {
			continue
		}
		if !o.LocalAddr.IsValid() || !k.LocalAddr.IsValid() || o.LocalAddr == k.LocalAddr {
			return true
		}
	}
	return false
}

func (t *Table[E]) add(k Key, e E) {
	t.entries[k] = e
	pp := protoPort{k.Proto, k.LocalPort}
	t.ports[pp] = append(t.ports[pp], k)
}

func (t *Table[E]) del(k Key) {
	delete(t.entries, k)
	pp := protoPort{k.Proto, k.LocalPort}
	keys := t.ports[pp]
	for i, o := range keys {
		if o == k {
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			break
		}
	}
	if len(keys) == 0 {
		delete(t.ports, pp)
	} else {
		t.ports[pp] = keys
	}
}

// Bind stores e under k with bind(2)'s exclusivity: it fails with
// ErrAddrInUse if another entry holds k's port on an overlapping address. A
// zero k.LocalPort picks a free ephemeral port. It returns the key stored.
func (t *Table[E]) Bind(k Key, e E) (Key, error) {
	k = k.Normalize()
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.LocalPort == 0 {
		port, err := t.ephemeral(k, Key{})
		if err != nil {
			return Key{}, err
		}
		k.LocalPort = port
	} else if t.conflicts(k, Key{}) {
		return Key{}, fmt.Errorf("bind %s: %w", k, ErrAddrInUse)
	}
	t.add(k, e)
	return k, nil
}

// Rebind moves e from old to k (for example when a UDP socket connects and
// gains a local address and a remote half), with Bind's exclusivity
// ignoring e's own old entry. A zero k.LocalPort keeps old's port if it had
// one, else picks an ephemeral one.
func (t *Table[E]) Rebind(old, k Key, e E) (Key, error) {
	old, k = old.Normalize(), k.Normalize()
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.entries[old]; old.LocalPort != 0 && (!ok || cur != e) {
		return Key{}, fmt.Errorf("rebind %s: not bound there", old)
	}
	if k.LocalPort == 0 {
		k.LocalPort = old.LocalPort
	}
	if k.LocalPort == 0 {
		port, err := t.ephemeral(k, old)
		if err != nil {
			return Key{}, err
		}
		k.LocalPort = port
	} else if t.conflicts(k, old) {
		return Key{}, fmt.Errorf("bind %s: %w", k, ErrAddrInUse)
	}
	if old.LocalPort != 0 {
		t.del(old)
	}
	t.add(k, e)
	return k, nil
}

// Insert stores e under k, failing only if exactly k is taken (a TCP
// connection accepted from a listener shares the listener's port).
func (t *Table[E]) Insert(k Key, e E) error {
	k = k.Normalize()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[k]; ok {
		return fmt.Errorf("insert %s: %w", k, ErrAddrInUse)
	}
	t.add(k, e)
	return nil
}

// Remove deletes k if it maps to e and reports whether it did.
func (t *Table[E]) Remove(k Key, e E) bool {
	k = k.Normalize()
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.entries[k]; !ok || cur != e {
		return false
	}
	t.del(k)
	return true
}

// ephemeral finds a free port for k in the ephemeral range.
func (t *Table[E]) ephemeral(k Key, except Key) (uint16, error) {
	const span = EphemeralLast - EphemeralFirst + 1
	start := t.next[k.Proto]
	if start < EphemeralFirst || start > EphemeralLast {
		start = EphemeralFirst
	}
	for i := 0; i < span; i++ {
		port := uint16(EphemeralFirst + (int(start)-EphemeralFirst+i)%span)
		k.LocalPort = port
		if !t.conflicts(k, except) {
			t.next[k.Proto] = port + 1
			return port, nil
		}
	}
	return 0, ErrNoPorts
}

// Connect binds a connected key (RemoteAddr and RemotePort set) for an
// active open. With LocalPort 0 it picks an ephemeral port such that the
// whole 4-tuple is unique and no unconnected binding (a listener) holds the
// port, as Linux's connect does: one local port serves connections to many
// remote endpoints. With a LocalPort set, only exactly k must be free and no
// listener may hold the port on an overlapping address.
func (t *Table[E]) Connect(k Key, e E) (Key, error) {
	k = k.Normalize()
	if !k.RemoteAddr.IsValid() || k.RemotePort == 0 {
		return Key{}, fmt.Errorf("connect %s: no remote endpoint", k)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	usable := func(k Key) bool {
		if _, ok := t.entries[k]; ok {
			return false
		}
		for _, o := range t.ports[protoPort{k.Proto, k.LocalPort}] {
			if !o.RemoteAddr.IsValid() && (!o.LocalAddr.IsValid() || !k.LocalAddr.IsValid() || o.LocalAddr == k.LocalAddr) {
				return false
			}
		}
		return true
	}
	if k.LocalPort != 0 {
		if !usable(k) {
			return Key{}, fmt.Errorf("connect %s: %w", k, ErrAddrInUse)
		}
		t.add(k, e)
		return k, nil
	}
	const span = EphemeralLast - EphemeralFirst + 1
	start := t.next[k.Proto]
	if start < EphemeralFirst || start > EphemeralLast {
		start = EphemeralFirst
	}
	for i := 0; i < span; i++ {
		k.LocalPort = uint16(EphemeralFirst + (int(start)-EphemeralFirst+i)%span)
		if usable(k) {
			t.next[k.Proto] = k.LocalPort + 1
			t.add(k, e)
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("connect %s: %w", k, ErrNoPorts)
}
