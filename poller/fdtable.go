package poller

// fdTable maps a file descriptor to a small per-backend value (its interest, or its index in
// a pollfd array); 0 means "not registered", so stored values must be non-zero. Kernel fds are
// small dense integers handed out lowest-first, so a slice indexed by fd is both faster and
// smaller than a map: 4 bytes per fd up to the highest one seen.
type fdTable struct {
	v []uint32
}

// present is or-ed into stored interests so that an interest of 0 is still "registered".
const present = 1 << 31

func (t *fdTable) get(fd int) (uint32, bool) {
	if fd >= 0 && fd < len(t.v) && t.v[fd] != 0 {
		return t.v[fd], true
	}
	return 0, false
}

func (t *fdTable) set(fd int, x uint32) {
	if fd >= len(t.v) {
		n := max(2*len(t.v), fd+1, 64)
		v := make([]uint32, n)
		copy(v, t.v)
		t.v = v
	}
	t.v[fd] = x
}

func (t *fdTable) del(fd int) {
	if fd >= 0 && fd < len(t.v) {
		t.v[fd] = 0
	}
}
