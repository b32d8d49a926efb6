package proxy

import (
	"errors"
	"net"
	nethttp "net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

func mustProxy(t *testing.T, routes ...RouteConfig) *Proxy {
	t.Helper()
	p, err := New(Options{Routes: routes, Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestTableMatch(t *testing.T) {
	p := mustProxy(t,
		RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1"}},
		RouteConfig{Prefix: "/api", Upstreams: []string{"127.0.0.1:2"}},
		RouteConfig{Prefix: "/api/v2/", Upstreams: []string{"127.0.0.1:3"}},
		RouteConfig{Host: "Admin.Example.com:8080", Prefix: "/", Upstreams: []string{"unix:/run/admin.sock"}},
		RouteConfig{Prefix: "/static/", Upstreams: []string{"127.0.0.1:4"}},
	)
	name := func(g *Group) string {
		if g == nil {
			return "none"
		}
		return g.ups[0].Name
	}
	for _, tc := range []struct{ host, path, want string }{
		{"example.com", "/", "127.0.0.1:1"},
		{"example.com", "/index.html", "127.0.0.1:1"},
		{"example.com", "/api", "127.0.0.1:2"},
		{"example.com", "/api/users", "127.0.0.1:2"},
		{"example.com", "/apiary", "127.0.0.1:1"},
		{"example.com", "/api/v2/x", "127.0.0.1:3"},
		{"example.com", "/api/v2", "127.0.0.1:2"},
		{"ADMIN.example.COM", "/api", "unix:/run/admin.sock"},
		{"admin.example.com:9", "/x", "unix:/run/admin.sock"},
		{"", "/static/a.css", "127.0.0.1:4"},
		{"[::1]:80", "/static", "127.0.0.1:1"},
	} {
		if got := name(p.Table().Match([]byte(tc.host), []byte(tc.path))); got != tc.want {
			t.Errorf("Match(%q, %q) = %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	q := mustProxy(t, RouteConfig{Prefix: "/api/", Upstreams: []string{"127.0.0.1:1"}})
	if g := q.Table().Match([]byte("h"), []byte("/other")); g != nil {
		t.Fatal("unrouted path matched")
	}
	if a := testing.AllocsPerRun(100, func() { p.Table().Match([]byte("admin.example.com"), []byte("/api/v2/x")) }); a != 0 {
		t.Fatalf("%.1f allocations per match", a)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		rc   RouteConfig
	}{
		{"no upstream", RouteConfig{Prefix: "/"}},
		{"relative prefix", RouteConfig{Prefix: "api", Upstreams: []string{"127.0.0.1:1"}}},
		{"scheme in upstream", RouteConfig{Prefix: "/", Upstreams: []string{"http://127.0.0.1:1"}}},
		{"no port", RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1"}}},
		{"empty unix path", RouteConfig{Prefix: "/", Upstreams: []string{"unix:"}}},
		{"duplicate upstream", RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1", "127.0.0.1:1"}}},
		{"bad policy", RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1"}, Balance: "random"}},
		{"negative timeout", RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1"}, HeaderTimeout: -1}},
		{"relative health path", RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1"}, HealthPath: "health"}},
	} {
		if _, err := New(Options{Routes: []RouteConfig{tc.rc}, Loops: 1}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	two := RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1"}}
	if _, err := New(Options{Routes: []RouteConfig{two, two}, Loops: 1}); !errors.Is(err, ErrConfig) {
		t.Errorf("duplicate route: %v", err)
	}
}

func TestBalancing(t *testing.T) {
	now := time.Now()
	t.Run("round-robin", func(t *testing.T) {
		p := mustProxy(t, RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}})
		g := p.groups[0]
		count := map[string]int{}
		for i := 0; i < 30; i++ {
			count[g.pick(0, now, nil).Name]++
		}
		for _, u := range g.ups {
			if count[u.Name] != 10 {
				t.Fatalf("uneven turns: %v", count)
			}
		}
	})
	t.Run("least-conn", func(t *testing.T) {
		p := mustProxy(t, RouteConfig{Prefix: "/", Balance: "least-conn", Upstreams: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}})
		g := p.groups[0]
		g.ups[0].active.Store(5)
		g.ups[1].active.Store(1)
		g.ups[2].active.Store(3)
		for i := 0; i < 6; i++ {
			if u := g.pick(1, now, nil); u != g.ups[1] {
				t.Fatalf("picked %s", u.Name)
			}
		}
		g.ups[1].active.Store(3)
		seen := map[string]bool{}
		for i := 0; i < 6; i++ {
			seen[g.pick(1, now, nil).Name] = true
		}
		if len(seen) != 2 || seen["127.0.0.1:1"] {
			t.Fatalf("ties not shared: %v", seen)
		}
	})
}

func TestPassiveHealth(t *testing.T) {
	p := mustProxy(t, RouteConfig{Prefix: "/", MaxFails: 2, FailTimeout: time.Minute, Upstreams: []string{"127.0.0.1:1", "127.0.0.1:2"}})
	g := p.groups[0]
	a, b := g.ups[0], g.ups[1]
	now := time.Now()
	a.failed(now)
	if !a.Admitted(now) {
		t.Fatal("ejected after one failure of two")
	}
	a.failed(now)
	if a.Admitted(now) {
		t.Fatal("still admitted after max-fails failures in a row")
	}
	for i := 0; i < 10; i++ {
		if u := g.pick(0, now, nil); u != b {
			t.Fatalf("picked the ejected upstream")
		}
	}
	// After the cool-down it is tried again; one failure ejects it again at once.
	later := now.Add(time.Minute)
	if !a.Admitted(later) {
		t.Fatal("not re-admitted after the cool-down")
	}
	a.failed(later)
	if a.Admitted(later) {
		t.Fatal("a failed trial did not eject again")
	}
	a.succeeded()
	if !a.Admitted(later) || a.fails.Load() != 0 {
		t.Fatal("a success did not restore the upstream")
	}
	// Everything ejected: the one whose ejection ends first is tried, never the avoided one.
	a.failed(now)
	a.failed(now)
	b.failed(now.Add(time.Second))
	b.failed(now.Add(time.Second))
	if u := g.pick(0, now, nil); u != a {
		t.Fatalf("all ejected: picked %s, want the first to recover", u.Name)
	}
	if u := g.pick(0, now, a); u != b {
		t.Fatalf("avoid not honoured: %v", u)
	}
	single := mustProxy(t, RouteConfig{Prefix: "/", Upstreams: []string{"127.0.0.1:1"}})
	if single.groups[0].pick(0, now, single.groups[0].ups[0]) != nil {
		t.Fatal("the avoided only upstream was picked")
	}
}

func TestActiveHealthCheck(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var checks atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("User-Agent") != "reactord-health-check" {
			w.WriteHeader(400)
			return
		}
		checks.Add(1)
		if !healthy.Load() {
			w.WriteHeader(503)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	s, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := mustProxy(t, RouteConfig{Prefix: "/", Upstreams: []string{ln.Addr().String()}, HealthPath: "/healthz",
		HealthInterval: testsupport.Scale(20 * time.Millisecond)})
	if err := p.Start(s); err != nil {
		t.Fatal(err)
	}
	u := p.groups[0].ups[0]
	testsupport.Eventually(t, 0, "a few checks", func() bool { return checks.Load() >= 2 })
	if !u.Admitted(time.Now()) {
		t.Fatal("healthy upstream not admitted")
	}
	healthy.Store(false)
	testsupport.Eventually(t, 0, "ejected by the active check", func() bool { return !u.Admitted(time.Now()) })
	healthy.Store(true)
	testsupport.Eventually(t, 0, "re-admitted by the active check", func() bool { return u.Admitted(time.Now()) })
}
