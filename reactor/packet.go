package reactor

import (
	"fmt"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/poller"
)

// PacketConn is a UDP socket served by a loop (see Server.ListenPacket). Datagrams arrive in
// PacketHandler.OnDatagram on the loop goroutine.
type PacketConn struct {
	loop       *Loop
	h          PacketHandler
	family     int
	local      net.Addr
	registered bool // in loop's poller and others map (owner only; see socket)

	// mu guards fd against close: WriteTo may run on any goroutine, and sending on a number
	// that was closed and reused would write into somebody else's socket.
	mu sync.RWMutex
	fd int
}

// datagramBudget bounds datagrams received per readiness report, for fairness.
const datagramBudget = 64

// WriteTo sends p as one datagram to addr (a *net.UDPAddr, or any net.Addr whose String is
// ip:port). It never blocks: if the socket buffer is full the kernel's EAGAIN is returned and
// the datagram dropped, as UDP may. Safe from any goroutine. Errors: ErrBadAddress, ErrConnClosed
// after the server closed, and kernel errors wrapped in os.SyscallError (errors.Is(err,
// unix.EACCES) for a broadcast address without WithBroadcast).
func (pc *PacketConn) WriteTo(p []byte, addr net.Addr) error {
	sa, err := sockopt.FromAddr(addr, pc.family)
	if err != nil {
		return err
	}
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	if pc.fd < 0 {
		return ErrConnClosed
	}
	for {
		err = unix.Sendto(pc.fd, p, 0, sa)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return os.NewSyscallError("sendto", err)
	}
	return nil
}

// LocalAddr returns the bound address. Any goroutine.
func (pc *PacketConn) LocalAddr() net.Addr { return pc.local }

// Loop returns the loop that serves the socket. Any goroutine.
func (pc *PacketConn) Loop() *Loop { return pc.loop }

// Fd returns the socket's descriptor, or -1 once closed. Loop goroutine.
func (pc *PacketConn) Fd() int { return pc.fd }

func (pc *PacketConn) onEvent(ev poller.Events) {
	l := pc.loop
	for i := 0; i < datagramBudget; i++ {
		n, sa, err := unix.Recvfrom(pc.fd, l.readBuf, 0)
		switch err {
		case nil:
		case unix.EAGAIN:
			return
		case unix.EINTR:
			continue
		default:
			// ECONNREFUSED and friends: an ICMP error for an earlier send, reported on the
			// next receive. It concerns that send, not the socket; keep serving.
			if ev&poller.Error != 0 {
				sockopt.SocketError(pc.fd) // clear the pending error so it is not reported again
			}
			continue
		}
		l.st.bytesIn += uint64(n)
		pc.h.OnDatagram(pc, l.readBuf[:n], sockopt.ToAddr(sockopt.UDP, sa))
	}
}

func (pc *PacketConn) bind(l *Loop) { pc.loop = l }

func (pc *PacketConn) register() error {
	if err := pc.loop.poll.Add(pc.fd, poller.Readable); err != nil {
		return fmt.Errorf("reactor: register UDP socket: %w", err)
	}
	pc.loop.others[pc.fd] = pc
	pc.registered = true
	return nil
}

// shut closes the socket, once. Its owner only (see socket); the lock keeps WriteTo, which
// may run anywhere, off a closed descriptor number.
func (pc *PacketConn) shut() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.fd < 0 {
		return
	}
	if pc.registered {
		pc.loop.poll.Remove(pc.fd)
		delete(pc.loop.others, pc.fd)
		pc.registered = false
	}
	unix.Close(pc.fd)
	pc.fd = -1
}
