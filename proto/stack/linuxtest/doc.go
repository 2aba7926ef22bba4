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
//
// TestLinuxTCP… (tcp_linux_test.go) run the stack's TCP and net/http
// against Linux over both wires: curl GET/POST from 1 KB to 100 MB, wrk,
// 1 GB each way with nc, the options ss -tino shows, the stack as a client
// of socat and of a closed port, an hping3 SYN flood against a small
// backlog (SYN cookies), and an nmap SYN scan (apt-get install -y curl wrk
// hping3 nmap). Sampled transfers are traced and checked with
// models.CheckTCPStreams and models.ValidateTCPTrace. LINUXTEST_PCAP=1
// captures every peer, LINUXTEST_KEEP_DIR=dir keeps captures and traces.
package linuxtest
