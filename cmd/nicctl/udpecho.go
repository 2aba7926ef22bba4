package main

import (
	"fmt"
	"net/netip"

	"github.com/verinic/verinic/proto/stack"
)

// startUDPEcho answers UDP datagrams to port on every address of st with
// their own contents (sim --udp-echo, serve --udp-echo; RFC 862's echo
// service). Close the socket to stop it.
func startUDPEcho(st *stack.Stack, port int) (func() error, error) {
	s, err := st.ListenUDP(netip.AddrPortFrom(netip.Addr{}, uint16(port)))
	if err != nil {
		return nil, fmt.Errorf("--udp-echo %d: %w", port, err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := s.ReadFrom(buf)
			if err != nil {
				return
			}
			s.WriteTo(buf[:n], from)
		}
	}()
	return s.Close, nil
}
