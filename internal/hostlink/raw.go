//go:build linux

package hostlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw is a Link over an AF_PACKET socket bound to one interface (typically
// one end of a veth pair whose other end the kernel uses). It receives every
// frame arriving on the interface (ETH_P_ALL) and sends frames out of it.
//
// Its interface should carry no IP address, so that the kernel does not
// answer for it alongside the simulated NIC. Frames the kernel sends to it
// from a veth peer must have complete checksums: turn the peer's transmit
// offloads off (DisableOffloads), or the kernel leaves TCP/UDP checksums
// for hardware that is not there.
type Raw struct {
	ifname string
	file   *os.File
	conn   syscall.RawConn
	r      Receiver
	c      counters
	closed atomic.Bool
	once   sync.Once
	done   chan struct{}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// OpenRaw opens an AF_PACKET SOCK_RAW socket bound to interface ifname in
// the calling thread's network namespace and starts delivering its frames
// to r. The interface should be up. Needs CAP_NET_RAW.
func OpenRaw(ifname string, r Receiver) (*Raw, error) {
	if r == nil {
		return nil, errors.New("hostlink: OpenRaw: nil receiver")
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("hostlink: interface %q: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("hostlink: AF_PACKET socket: %w (needs CAP_NET_RAW: run as root)", err)
		}
		return nil, fmt.Errorf("hostlink: AF_PACKET socket: %w", err)
	}
	// Frames this socket sends are looped back to it as PACKET_OUTGOING;
	// ask the kernel not to (Linux 4.20+). Older kernels still deliver
	// them, and readLoop drops them by packet type.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	// The kernel hands AF_PACKET sockets frames with their 802.1Q tag
	// taken out (VLAN acceleration) and reports it in auxiliary data; a NIC
	// on the wire must see the tag, so readLoop puts it back.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostlink: PACKET_AUXDATA on %q: %w", ifname, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostlink: bind AF_PACKET socket to %q: %w", ifname, err)
	}
	file := os.NewFile(uintptr(fd), "packet:"+ifname)
	conn, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("hostlink: %q: %w", ifname, err)
	}
	l := &Raw{ifname: ifname, file: file, conn: conn, r: r, done: make(chan struct{})}
	go l.readLoop()
	return l, nil
}

// Name returns the interface the socket is bound to.
func (l *Raw) Name() string { return l.ifname }

func (l *Raw) readLoop() {
	defer close(l.done)
	// Room for the frame, a re-inserted 802.1Q tag, padding and the FCS.
	buf := make([]byte, maxReadSize+vlanTagLen+fcsLen)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	var bo backoff
	for {
		var (
			n, oobn int
			from    unix.Sockaddr
			rerr    error
			trunc   bool
		)
		err := l.conn.Read(func(fd uintptr) bool {
			var flags int
			n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), buf[:maxReadSize], oob, unix.MSG_TRUNC)
			trunc = flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0
			return rerr != unix.EAGAIN
		})
		if err != nil { // the file was closed
			return
		}
		if rerr != nil {
			if l.closed.Load() {
				return
			}
			l.c.rxErrors.Add(1) // ENETDOWN when the interface goes down, say
			bo.fail()
			continue
		}
		bo.ok()
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			l.c.rxOutgoing.Add(1)
			continue
		}
		if trunc || n < headerLen {
			l.c.rxErrors.Add(1) // larger than any frame can be, or no header
			continue
		}
		if aux, ok := auxdata(oob[:oobn]); ok {
			if aux.Status&unix.TP_STATUS_CSUMNOTREADY != 0 {
				l.c.rxCsumNotReady.Add(1)
			}
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				tpid := uint16(unix.ETH_P_8021Q)
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					tpid = aux.Vlan_tpid
				}
				copy(buf[12+vlanTagLen:n+vlanTagLen], buf[12:n])
				binary.BigEndian.PutUint16(buf[12:], tpid)
				binary.BigEndian.PutUint16(buf[14:], aux.Vlan_tci)
				n += vlanTagLen
			}
		}
		deliver(&l.c, l.r, buf, n)
	}
}

// vlanTagLen is the size of an 802.1Q tag (TPID and TCI).
const vlanTagLen = 4

// auxdata finds the PACKET_AUXDATA control message (struct
// tpacket_auxdata, linux/if_packet.h) in oob.
func auxdata(oob []byte) (unix.TpacketAuxdata, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return unix.TpacketAuxdata{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA &&
			len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			return *(*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0])), true
		}
	}
	return unix.TpacketAuxdata{}, false
}

// Transmit checks and strips the frame's FCS and sends it out of the
// interface. A frame with a bad FCS is dropped and counted. The slice is not
// kept.
func (l *Raw) Transmit(frame []byte) {
	if l.closed.Load() {
		l.c.txErrors.Add(1)
		return
	}
	f, ok := strip(&l.c, frame)
	if !ok {
		return
	}
	var werr error
	err := l.conn.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), f)
		return werr != unix.EAGAIN
	})
	if err != nil || werr != nil {
		l.c.txErrors.Add(1)
		return
	}
	l.c.txFrames.Add(1)
	l.c.txBytes.Add(uint64(len(f)))
}

// Up reports whether the link is open.
func (l *Raw) Up() bool { return !l.closed.Load() }

// Stats returns the link's counters.
func (l *Raw) Stats() Stats { return l.c.snapshot() }

// Close stops the reader, waits for it to exit and closes the socket.
func (l *Raw) Close() error {
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		err = l.file.Close()
		<-l.done
	})
	return err
}
