// Package sockopt opens listening and datagram sockets with raw system calls and converts
// between the kernel's socket addresses (unix.Sockaddr) and package net's address types.
//
// The reactor never uses net.Listener or net.Conn for its own sockets: it needs the bare,
// non-blocking file descriptors to register with its poller. Everything here goes through
// golang.org/x/sys/unix.
package sockopt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Kind is the transport of a socket.
type Kind uint8

// The kinds of socket the reactor listens on.
const (
	TCP Kind = iota + 1
	Unix
	UDP
)

// ErrNetwork is returned for a network name the reactor does not serve.
var ErrNetwork = errors.New("reactor: unsupported network")

// ErrAddress is returned for an address that cannot be used with the network.
var ErrAddress = errors.New("reactor: bad address")

// Config holds the socket options applied before bind. Zero values leave the kernel default.
type Config struct {
	ReuseAddr bool
	// ReusePort lets several sockets bind the same address and port: SO_REUSEPORT, or
	// SO_REUSEPORT_LB on FreeBSD. Whether the kernel then spreads connections and datagrams
	// over them depends on the platform: see ReusePortBalances.
	ReusePort bool
	Broadcast bool
	RcvBuf    int
	SndBuf    int
	Backlog   int
}

// Endpoint is a resolved address: the family and sockaddr to bind, and the kind of socket.
type Endpoint struct {
	Kind   Kind
	Family int
	Sa     unix.Sockaddr
	// V6Only is set for an explicit IPv6 address; a wildcard "tcp"/"udp" address is bound
	// dual-stack on AF_INET6 so it also serves IPv4, as package net does.
	V6Only bool
	Path   string // Unix socket path
}

// Resolve parses network and addr into an Endpoint. Host names are resolved with the Go
// resolver (a literal IP never touches DNS).
func Resolve(network, addr string) (Endpoint, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		a, err := net.ResolveTCPAddr(network, addr)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%w: %s %s: %v", ErrAddress, network, addr, err)
		}
		return ipEndpoint(TCP, network, a.IP, a.Port, a.Zone)
	case "udp", "udp4", "udp6":
		a, err := net.ResolveUDPAddr(network, addr)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%w: %s %s: %v", ErrAddress, network, addr, err)
		}
		return ipEndpoint(UDP, network, a.IP, a.Port, a.Zone)
	case "unix":
		// sun_path must hold the path and its NUL: 108 bytes on Linux, 104 on the BSDs.
		if addr == "" || len(addr) >= maxUnixPath {
			return Endpoint{}, fmt.Errorf("%w: unix socket path %q (must be 1..%d bytes)", ErrAddress, addr, maxUnixPath-1)
		}
		return Endpoint{Kind: Unix, Family: unix.AF_UNIX, Sa: &unix.SockaddrUnix{Name: addr}, Path: addr}, nil
	}
	return Endpoint{}, fmt.Errorf("%w: %q", ErrNetwork, network)
}

func ipEndpoint(k Kind, network string, ip net.IP, port int, zone string) (Endpoint, error) {
	last := network[len(network)-1]
	switch {
	case ip == nil || ip.IsUnspecified() && ip.To4() == nil:
		// Wildcard: "tcp4" binds 0.0.0.0; "tcp6" binds [::] v6-only; "tcp" binds [::]
		// dual-stack when the kernel has IPv6, else 0.0.0.0.
		if last == '4' || last != '6' && !HaveIPv6() {
			return Endpoint{Kind: k, Family: unix.AF_INET, Sa: &unix.SockaddrInet4{Port: port}}, nil
		}
		return Endpoint{Kind: k, Family: unix.AF_INET6, Sa: &unix.SockaddrInet6{Port: port}, V6Only: last == '6'}, nil
	case ip.To4() != nil && last != '6':
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip.To4())
		return Endpoint{Kind: k, Family: unix.AF_INET, Sa: sa}, nil
	case ip.To16() != nil && ip.To4() == nil && last != '4':
		sa := &unix.SockaddrInet6{Port: port, ZoneId: zoneID(zone)}
		copy(sa.Addr[:], ip.To16())
		return Endpoint{Kind: k, Family: unix.AF_INET6, Sa: sa, V6Only: true}, nil
	}
	return Endpoint{}, fmt.Errorf("%w: %v does not fit network %q", ErrAddress, ip, network)
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// HaveIPv6 reports whether the kernel can open an AF_INET6 socket.
func HaveIPv6() bool {
	fd, err := newSocket(unix.AF_INET6, unix.SOCK_STREAM)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Open creates a non-blocking, close-on-exec socket for ep, applies cfg, binds it and, for
// stream sockets, listens. On error nothing is left open, and the error names the address the
// way package net does: a *net.OpError "listen tcp 127.0.0.1:8080: bind: address already in
// use" wrapping the *os.SyscallError (so errors.Is(err, unix.EADDRINUSE) holds).
func Open(ep Endpoint, cfg Config) (int, error) {
	fd, err := open(ep, cfg)
	if err != nil {
		return -1, &net.OpError{Op: "listen", Net: ep.Kind.String(), Addr: ToAddr(ep.Kind, ep.Sa), Err: err}
	}
	return fd, nil
}

// String returns the network name package net uses for the kind: "tcp", "unix" or "udp".
func (k Kind) String() string {
	switch k {
	case TCP:
		return "tcp"
	case Unix:
		return "unix"
	case UDP:
		return "udp"
	}
	return "unknown"
}

func open(ep Endpoint, cfg Config) (fd int, err error) {
	typ := unix.SOCK_STREAM
	if ep.Kind == UDP {
		typ = unix.SOCK_DGRAM
	}
	sock, err := newSocket(ep.Family, typ)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fd = sock
	defer func() {
		if err != nil {
			// sock, not fd: the failing return statement has already set fd to -1.
			unix.Close(sock)
		}
	}()
	set := func(level, opt, v int, name string) error {
		if e := unix.SetsockoptInt(fd, level, opt, v); e != nil {
			return os.NewSyscallError("setsockopt "+name, e)
		}
		return nil
	}
	if ep.Family == unix.AF_INET6 {
		v := 0
		if ep.V6Only {
			v = 1
		}
		if err = set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v, "IPV6_V6ONLY"); err != nil {
			return
		}
	}
	if ep.Kind != Unix {
		if cfg.ReuseAddr {
			if err = set(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, "SO_REUSEADDR"); err != nil {
				return
			}
		}
		if cfg.ReusePort {
			// SO_REUSEPORT_LB on FreeBSD, whose plain SO_REUSEPORT does not spread load
			// (see reusePortOpt and ReusePortBalances).
			if err = set(unix.SOL_SOCKET, reusePortOpt, 1, reusePortName); err != nil {
				return
			}
		}
	}
	if cfg.Broadcast {
		if err = set(unix.SOL_SOCKET, unix.SO_BROADCAST, 1, "SO_BROADCAST"); err != nil {
			return
		}
	}
	// Buffer sizes are set on the listener before listen(2) so accepted sockets inherit them
	// (and so the TCP window scale negotiated in the handshake can cover them).
	if cfg.RcvBuf > 0 {
		if err = set(unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RcvBuf, "SO_RCVBUF"); err != nil {
			return
		}
	}
	if cfg.SndBuf > 0 {
		if err = set(unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.SndBuf, "SO_SNDBUF"); err != nil {
			return
		}
	}
	if err = unix.Bind(fd, ep.Sa); err != nil {
		return -1, os.NewSyscallError("bind", err)
	}
	if typ == unix.SOCK_STREAM {
		backlog := cfg.Backlog
		if backlog <= 0 {
			backlog = unix.SOMAXCONN
		}
		if err = unix.Listen(fd, backlog); err != nil {
			return -1, os.NewSyscallError("listen", err)
		}
	}
	return fd, nil
}

// WithPort returns a copy of ep bound to port: once the first of several SO_REUSEPORT sockets
// has been given an ephemeral port, the others must bind that same port.
func (ep Endpoint) WithPort(port int) Endpoint {
	switch sa := ep.Sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		c.Port = port
		ep.Sa = &c
	case *unix.SockaddrInet6:
		c := *sa
		c.Port = port
		ep.Sa = &c
	}
	return ep
}

// Port returns the port of an IP sockaddr, or 0.
func Port(sa unix.Sockaddr) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

// ToAddr converts a kernel address to the net.Addr type of kind (TCPAddr, UDPAddr, UnixAddr).
// It returns nil for a nil or unknown sockaddr.
func ToAddr(k Kind, sa unix.Sockaddr) net.Addr {
	var ip net.IP
	var port int
	var zone string
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		ip = net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3])
		port = sa.Port
	case *unix.SockaddrInet6:
		ip = make(net.IP, net.IPv6len)
		copy(ip, sa.Addr[:])
		port = sa.Port
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	default:
		return nil
	}
	if k == UDP {
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: zone}
}

// FromAddr converts a net.Addr (UDPAddr, TCPAddr, UnixAddr, or any Addr whose String parses as
// host:port) to a sockaddr for sendto(2). family is the socket's family: an IPv4 destination
// sent from an AF_INET6 socket is mapped to ::ffff:a.b.c.d.
func FromAddr(a net.Addr, family int) (unix.Sockaddr, error) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return nil, fmt.Errorf("%w: nil address", ErrAddress)
	case *net.UDPAddr:
		if a == nil {
			return nil, fmt.Errorf("%w: nil address", ErrAddress)
		}
		ap = a.AddrPort()
	case *net.TCPAddr:
		if a == nil {
			return nil, fmt.Errorf("%w: nil address", ErrAddress)
		}
		ap = a.AddrPort()
	case *net.UnixAddr:
		if a == nil {
			return nil, fmt.Errorf("%w: nil address", ErrAddress)
		}
		return &unix.SockaddrUnix{Name: a.Name}, nil
	default:
		p, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAddress, err)
		}
		ap = p
	}
	ip := ap.Addr()
	if !ip.IsValid() {
		return nil, fmt.Errorf("%w: %v", ErrAddress, a)
	}
	if family == unix.AF_INET6 {
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			sa.ZoneId = zoneID(z)
		}
		return sa, nil
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil, fmt.Errorf("%w: IPv6 destination %v on an IPv4 socket", ErrAddress, ip)
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}, nil
}

// SetNoDelay turns Nagle's algorithm off (on=true) for a TCP socket.
func SetNoDelay(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return os.NewSyscallError("setsockopt TCP_NODELAY", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, v))
}

// SetKeepAlive enables TCP keep-alive probes after d of silence, repeated every d. d <= 0
// leaves keep-alive off.
func SetKeepAlive(fd int, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	secs := int((d + time.Second - 1) / time.Second)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_KEEPALIVE", err)
	}
	// TCP_KEEPIDLE on Linux and FreeBSD, TCP_KEEPALIVE on macOS: same meaning, in seconds.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, keepIdleOpt, secs); err != nil {
		return os.NewSyscallError("setsockopt "+keepIdleName, err)
	}
	return os.NewSyscallError("setsockopt TCP_KEEPINTVL", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs))
}

// SocketError returns the pending error of fd (SO_ERROR), or nil.
func SocketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}
