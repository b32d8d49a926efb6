package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/reactor"
)

// Where the listening sockets come from.
//
// A socket is opened by the daemon itself (Listen, for each -listen and -admin-listen
// address), or received ready-made: from systemd (socket activation, the LISTEN_FDS protocol of
// sd_listen_fds(3)), or from the reactord process this one replaces (a binary upgrade on
// SIGUSR2, see upgrade.go), or, within one process, from the generation a configuration reload
// replaces (see generation.go). Received sockets keep every connection that is queued on them:
// nothing is refused while the serving process or configuration changes.

// Roles of a listening socket.
const (
	roleListen = "listen" // the public listeners: content (and the probes without -admin-listen)
	roleAdmin  = "admin"  // the admin listener: probes and /metrics
	roleTLS    = "tls"    // the public HTTPS listeners (-tls-listen): as roleListen, over TLS
)

// Environment of socket activation (sd_listen_fds(3)): the descriptors start at 3.
const (
	envListenPID     = "LISTEN_PID"
	envListenFDs     = "LISTEN_FDS"
	envListenFDNames = "LISTEN_FDNAMES"
	listenFDsStart   = 3
)

// envUpgrade carries, from a process to the binary it starts on SIGUSR2, the description of
// the descriptors passed from 3 on (upgradeEnv, as JSON).
const envUpgrade = "REACTORD_UPGRADE"

// upgradeEnv is the JSON in REACTORD_UPGRADE: sockets[i] is descriptor 3+i, and Ready is the
// write end of the pipe on which the new process reports that it serves.
type upgradeEnv struct {
	Sockets []inheritedSocket `json:"sockets"`
	Ready   int               `json:"ready"`
	Parent  int               `json:"parent"`
}

// inheritedSocket is a listening socket received ready-made.
type inheritedSocket struct {
	FD   int    `json:"-"`
	Role string `json:"role"`
	// Spec is the -listen or -admin-listen value it was opened for, as written in the
	// configuration, or "" for a socket systemd opened (its addresses are the unit's, not ours).
	Spec string `json:"spec"`
	// Name is systemd's FileDescriptorName, kept for the log.
	Name string `json:"name,omitempty"`
}

// socketGroup is one address a generation serves: the sockets of one ListenFd or Listen call.
type socketGroup struct {
	inheritedSocket          // Role, Spec, Name; FD unused
	addr            net.Addr // the bound address
}

// activationSockets reads the socket activation environment. Descriptors named "admin"
// (FileDescriptorName=admin in the .socket unit) serve the admin role, those named "tls" the
// public role over HTTPS, every other one the public role. The variables are removed from the environment, as sd_listen_fds(1) does, so a
// process started later (an upgrade) does not take them for its own. LISTEN_PID must be this
// process: the variables may have been meant for a parent.
func activationSockets(log *zap.Logger) ([]inheritedSocket, error) {
	pidText, fdsText, names := os.Getenv(envListenPID), os.Getenv(envListenFDs), os.Getenv(envListenFDNames)
	os.Unsetenv(envListenPID)
	os.Unsetenv(envListenFDs)
	os.Unsetenv(envListenFDNames)
	if fdsText == "" {
		return nil, nil
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid != os.Getpid() {
		log.Warn("ignoring LISTEN_FDS meant for another process", zap.String("LISTEN_PID", pidText), zap.Int("pid", os.Getpid()))
		return nil, nil
	}
	n, err := strconv.Atoi(fdsText)
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("%s=%q: want a descriptor count", envListenFDs, fdsText)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	out := make([]inheritedSocket, n)
	for i := range out {
		s := inheritedSocket{FD: listenFDsStart + i, Role: roleListen}
		if i < len(nameList) {
			s.Name = nameList[i]
		}
		if s.Name == roleAdmin || s.Name == roleTLS {
			s.Role = s.Name
		}
		// sd_listen_fds sets close-on-exec on what it hands over; so do we, so a descriptor
		// that is not used is not passed on by accident.
		unix.CloseOnExec(s.FD)
		out[i] = s
	}
	return out, nil
}

// upgradeSockets reads REACTORD_UPGRADE, set by the process this one replaces, and removes it
// from the environment. It returns the sockets and the readiness pipe (nil when not started
// by an upgrade).
func upgradeSockets() ([]inheritedSocket, *os.File, int, error) {
	text := os.Getenv(envUpgrade)
	os.Unsetenv(envUpgrade)
	if text == "" {
		return nil, nil, 0, nil
	}
	var env upgradeEnv
	if err := json.Unmarshal([]byte(text), &env); err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %v", envUpgrade, err)
	}
	if env.Ready != listenFDsStart+len(env.Sockets) {
		return nil, nil, 0, fmt.Errorf("%s: readiness descriptor %d, want %d", envUpgrade, env.Ready, listenFDsStart+len(env.Sockets))
	}
	for i := range env.Sockets {
		s := &env.Sockets[i]
		s.FD = listenFDsStart + i
		if s.Role != roleListen && s.Role != roleAdmin && s.Role != roleTLS {
			return nil, nil, 0, fmt.Errorf("%s: socket %d has role %q", envUpgrade, i, s.Role)
		}
		unix.CloseOnExec(s.FD)
	}
	unix.CloseOnExec(env.Ready)
	return env.Sockets, os.NewFile(uintptr(env.Ready), "upgrade-ready"), env.Parent, nil
}

// bindRole gives srv its sockets of one role: every systemd socket of the role when there is
// any (the unit decides the addresses then, and specs is ignored), otherwise one group per
// configured address, made of the inherited sockets opened for that same address or, when
// there are none, a socket opened now. The inherited sockets it uses are marked taken (FD
// -1); the others stay the caller's. opts are given to every socket (the TLS ones for
// roleTLS).
func bindRole(srv *reactor.Server, role string, specs []string, inh []inheritedSocket, log *zap.Logger, opts ...reactor.ListenOption) ([]socketGroup, error) {
	var groups []socketGroup
	fromSystemd := false
	for i := range inh {
		s := &inh[i]
		if s.FD < 0 || s.Role != role || s.Spec != "" {
			continue
		}
		fromSystemd = true
		addr, err := srv.ListenFdWith([]int{s.FD}, opts...)
		if err != nil {
			return groups, fmt.Errorf("%s socket %d (%q) from systemd: %w", role, s.FD, s.Name, err)
		}
		groups = append(groups, socketGroup{inheritedSocket: *s, addr: addr})
		s.FD = -1
	}
	if fromSystemd {
		if len(specs) > 0 {
			log.Info("serving the sockets systemd passed; the configured addresses are not opened",
				zap.String("role", role), zap.Strings("configured", specs))
		}
		return groups, nil
	}
	for _, spec := range specs {
		var fds []int
		for i := range inh {
			if s := &inh[i]; s.FD >= 0 && s.Role == role && s.Spec == spec {
				fds = append(fds, s.FD)
			}
		}
		var addr net.Addr
		var err error
		if len(fds) > 0 {
			addr, err = srv.ListenFdWith(fds, opts...)
		} else {
			network, address := listenSpec(spec)
			if network == "unix" {
				if err := removeStaleSocket(address); err != nil {
					log.Warn("stale unix socket", zap.String("path", address), zap.Error(err))
				}
			}
			addr, err = srv.Listen(network, address, opts...)
		}
		if err != nil {
			return groups, fmt.Errorf("%s %s: %w", role, spec, err)
		}
		for i := range inh {
			if s := &inh[i]; s.FD >= 0 && s.Role == role && s.Spec == spec {
				s.FD = -1
			}
		}
		groups = append(groups, socketGroup{inheritedSocket: inheritedSocket{Role: role, Spec: spec}, addr: addr})
	}
	return groups, nil
}

// closeUnused closes the inherited sockets nothing took (an address no longer configured),
// and says so: connections queued on them are lost.
func closeUnused(inh []inheritedSocket, log *zap.Logger) {
	for i := range inh {
		if s := &inh[i]; s.FD >= 0 {
			log.Warn("closing an inherited socket that the configuration no longer uses",
				zap.String("role", s.Role), zap.String("spec", s.Spec), zap.String("name", s.Name), zap.Int("fd", s.FD))
			unix.Close(s.FD)
			s.FD = -1
		}
	}
}

// handOver duplicates srv's sockets and labels each with the role and address it was opened
// for, matching the addresses groups recorded. The caller owns the descriptors.
func handOver(srv *reactor.Server, groups []socketGroup) ([]inheritedSocket, error) {
	fds, err := srv.ListenerFds()
	if err != nil {
		return nil, err
	}
	out := make([]inheritedSocket, 0, len(fds))
	for _, d := range fds {
		var g *socketGroup
		for i := range groups {
			if groups[i].addr.Network() == d.Addr.Network() && groups[i].addr.String() == d.Addr.String() {
				g = &groups[i]
				break
			}
		}
		if g == nil {
			// Cannot happen: every socket was opened through bindRole. Not passed on.
			unix.Close(d.Fd)
			continue
		}
		s := g.inheritedSocket
		s.FD = d.Fd
		out = append(out, s)
	}
	return out, nil
}

// closeSockets closes descriptors the caller owns.
func closeSockets(socks []inheritedSocket) {
	for _, s := range socks {
		if s.FD >= 0 {
			unix.Close(s.FD)
		}
	}
}

// errNoSockets is returned when a role ends up with no socket at all.
var errNoSockets = errors.New("no listening socket")
