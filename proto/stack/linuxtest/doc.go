// Package linuxtest holds the tests that run the stack against the Linux
// kernel as its peer: a simulated 82599 driven by the real driver, attached
// to a TAP device or to one end of a veth pair (AF_PACKET) inside a private
// network namespace the test creates, with iputils ping, arping, socat and
// kernel sockets on the other side, and every frame captured to a pcap file
// that tshark must find free of malformed packets and checksum errors.
//
// The tests are named TestLinux… (go test ./... -run TestLinux). They need
// root, ip(8), /dev/net/tun and the tools (apt-get install -y iputils-ping
// arping netcat-openbsd socat tshark); without them they skip and say why.
package linuxtest
