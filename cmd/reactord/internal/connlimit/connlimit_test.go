package connlimit

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

var _ reactor.Admitter = (*Limiter)(nil)

// TestLimiter runs sequences of admissions and releases against a limit of 2 and checks each
// answer, then the counts and the number of addresses.
func TestLimiter(t *testing.T) {
	v4, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	v6, v6zone := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0")
	type op struct {
		release bool
		addr    netip.Addr
		want    bool // Admit's answer
	}
	admit := func(a netip.Addr, want bool) op { return op{addr: a, want: want} }
	release := func(a netip.Addr) op { return op{release: true, addr: a} }
	tests := []struct {
		name   string
		ops    []op
		counts map[netip.Addr]int
		addrs  int64
	}{
		{"up to the limit", []op{admit(v4, true), admit(v4, true), admit(v4, false), admit(v4, false)},
			map[netip.Addr]int{v4: 2}, 1},
		{"addresses apart", []op{admit(v4, true), admit(v4, true), admit(v4b, true), admit(v6, true), admit(v4, false)},
			map[netip.Addr]int{v4: 2, v4b: 1, v6: 1}, 3},
		{"release makes room", []op{admit(v4, true), admit(v4, true), release(v4), admit(v4, true), admit(v4, false)},
			map[netip.Addr]int{v4: 2}, 1},
		{"last release forgets", []op{admit(v4, true), admit(v6, true), release(v4), release(v6)},
			map[netip.Addr]int{v4: 0, v6: 0}, 0},
		{"mapped is IPv4", []op{admit(v4, true), admit(mapped, true), admit(v4, false), release(mapped), admit(v4, true)},
			map[netip.Addr]int{v4: 2, mapped: 2}, 1},
		{"zone ignored", []op{admit(v6zone, true), admit(v6zone.WithZone("eth1"), true), admit(v6zone.WithZone(""), false)},
			map[netip.Addr]int{v6zone.WithZone(""): 2}, 1},
		{"release without admit ignored", []op{release(v4), admit(v4, true), release(v4), release(v4), admit(v4, true), admit(v4, true), admit(v4, false)},
			map[netip.Addr]int{v4: 2}, 1},
		{"zero address not counted", []op{admit(netip.Addr{}, true), admit(netip.Addr{}, true), admit(netip.Addr{}, true), release(netip.Addr{})},
			map[netip.Addr]int{{}: 0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(nil)
			defer c.Close()
			l, err := c.Limiter(2)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range tc.ops {
				if o.release {
					l.Release(o.addr)
				} else if got := l.Admit(o.addr); got != o.want {
					t.Fatalf("op %d: Admit(%v) = %v, want %v", i, o.addr, got, o.want)
				}
			}
			for a, want := range tc.counts {
				if got := c.Count(a); got != want {
					t.Errorf("Count(%v) = %d, want %d", a, got, want)
				}
			}
			if got := c.Addresses(); got != tc.addrs {
				t.Errorf("Addresses() = %d, want %d", got, tc.addrs)
			}
			entries := 0
			for i := range c.shards {
				entries += len(c.shards[i].m)
			}
			if int64(entries) != tc.addrs {
				t.Errorf("%d map entries for %d addresses: a released address was kept", entries, tc.addrs)
			}
		})
	}
}

// TestLimiterBadLimit: Limiter refuses a limit that is not positive (0 means "no limiter").
func TestLimiterBadLimit(t *testing.T) {
	c := New(nil)
	for _, n := range []int{0, -1, 1 << 31} {
		if l, err := c.Limiter(n); err != ErrLimit || l != nil {
			t.Errorf("Limiter(%d) = %v, %v; want ErrLimit", n, l, err)
		}
	}
}

// TestLimitersShareCounter: two Limiters of one Counter (a reload's old and new generation)
// count the same connections, each with its own limit.
func TestLimitersShareCounter(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.7")
	c := New(nil)
	old, _ := c.Limiter(3)
	next, _ := c.Limiter(2)
	for range 2 {
		if !old.Admit(a) {
			t.Fatal("old generation refused under its limit")
		}
	}
	if next.Admit(a) {
		t.Fatal("new generation admitted a client holding its limit on the old one")
	}
	if !old.Admit(a) {
		t.Fatal("old generation refused its third")
	}
	old.Release(a)
	old.Release(a)
	if !next.Admit(a) || c.Count(a) != 2 {
		t.Fatalf("after two releases on the old generation: count %d", c.Count(a))
	}
}

// TestLimiterConcurrent hammers one Counter from many goroutines (run it with -race): no
// address ever holds more than the limit at once, every admitted connection is released, and
// at the end nothing is counted or kept.
func TestLimiterConcurrent(t *testing.T) {
	const (
		workers = 8
		rounds  = 2000
		limit   = 3
		nAddrs  = 40
	)
	c := New(nil)
	defer c.Close()
	l, _ := c.Limiter(limit)
	addrs := make([]netip.Addr, nAddrs)
	live := make([]atomic.Int32, nAddrs) // the test's own count of what is admitted
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		} else {
			addrs[i] = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i))
		}
	}
	var over atomic.Int32
	var refusals atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []int
			for r := range rounds {
				i := (w*7919 + r*31) % nAddrs
				if l.Admit(addrs[i]) {
					if live[i].Add(1) > limit {
						over.Add(1)
					}
					held = append(held, i)
				} else {
					refusals.Add(1)
				}
				if len(held) > 4 || r%3 == 0 && len(held) > 0 {
					j := held[0]
					held = held[1:]
					live[j].Add(-1)
					l.Release(addrs[j])
				}
			}
			for _, j := range held {
				live[j].Add(-1)
				l.Release(addrs[j])
			}
		}()
	}
	wg.Wait()
	if n := over.Load(); n != 0 {
		t.Fatalf("an address held more than %d connections %d times", limit, n)
	}
	if c.Addresses() != 0 {
		t.Fatalf("Addresses() = %d after every release", c.Addresses())
	}
	for i := range c.shards {
		if n := len(c.shards[i].m); n != 0 {
			t.Fatalf("shard %d keeps %d entries after every release", i, n)
		}
	}
	t.Logf("%d refusals", refusals.Load())
}

// TestRefusalBurstLogged: the first refusal of a burst logs one warning; the burst's end,
// after a quiet period, logs another with the count; a later refusal starts a new burst.
func TestRefusalBurstLogged(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	c := New(zap.New(core))
	defer c.Close()
	c.quiet = testsupport.Scale(50 * time.Millisecond)
	a := netip.MustParseAddr("203.0.113.9")
	l, _ := c.Limiter(1)
	if !l.Admit(a) {
		t.Fatal("first connection refused")
	}
	for range 5 {
		if l.Admit(a) {
			t.Fatal("admitted over the limit")
		}
	}
	if n := logs.FilterMessage("refusing connections over the per-address limit").Len(); n != 1 {
		t.Fatalf("%d start lines for one burst, want 1: %v", n, logs.All())
	}
	testsupport.Eventually(t, 5*time.Second, "the end of the burst logged", func() bool {
		return logs.FilterMessage("refusing connections stopped").Len() == 1
	})
	end := logs.FilterMessage("refusing connections stopped").All()[0]
	if got := end.ContextMap()["refused"]; got != uint64(5) {
		t.Fatalf("end of burst says refused=%v, want 5", got)
	}
	if l.Admit(a) {
		t.Fatal("admitted over the limit")
	}
	if n := logs.FilterMessage("refusing connections over the per-address limit").Len(); n != 2 {
		t.Fatalf("%d start lines after a second burst, want 2", n)
	}
	c.Close() // ends the second burst at once
	if n := logs.FilterMessage("refusing connections stopped").Len(); n != 2 {
		t.Fatalf("Close did not log the end of the burst in progress: %v", logs.All())
	}
}

// BenchmarkAdmitRelease measures one admission and its release, from parallel goroutines
// over many addresses (what loops do at accept and close).
func BenchmarkAdmitRelease(b *testing.B) {
	c := New(nil)
	l, _ := c.Limiter(1 << 20)
	var seq atomic.Uint32
	b.RunParallel(func(pb *testing.PB) {
		base := seq.Add(1) << 16
		i := uint32(0)
		for pb.Next() {
			i++
			v := base + i%1024
			a := netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
			l.Admit(a)
			l.Release(a)
		}
	})
}
