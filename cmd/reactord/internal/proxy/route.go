package proxy

import (
	"sort"
	"strings"
)

// route sends requests whose Host and path match to a group of upstreams.
type route struct {
	host   string // lower-case host without port; "" matches any
	prefix string
	group  *Group
}

// matches reports whether path falls under the route's prefix: the path equals the prefix or
// starts with it, and a prefix that does not end in "/" must be followed by "/" or nothing,
// so "/api" takes "/api" and "/api/x" but not "/apiary".
func (rt *route) matchesPath(path []byte) bool {
	p := rt.prefix
	if len(path) < len(p) || string(path[:len(p)]) != p {
		return false
	}
	if len(path) == len(p) || p[len(p)-1] == '/' {
		return true
	}
	return path[len(p)] == '/'
}

// Table finds the group for a request. Routes for a named host come before routes for any
// host; among those, the longest prefix wins. It is read-only once built and safe for
// concurrent use by every loop.
type Table struct {
	routes []route
}

// newTable sorts the routes into matching order.
func newTable(routes []route) *Table {
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if (a.host == "") != (b.host == "") {
			return a.host != ""
		}
		return len(a.prefix) > len(b.prefix)
	})
	return &Table{routes: routes}
}

// Match returns the group for a request to host (the Host header or absolute-form authority,
// possibly with a port) and path, or nil when no route takes it. No allocation.
func (t *Table) Match(host, path []byte) *Group {
	h := hostOnly(host)
	for i := range t.routes {
		rt := &t.routes[i]
		if rt.host != "" && !equalFold(h, rt.host) {
			continue
		}
		if rt.matchesPath(path) {
			return rt.group
		}
	}
	return nil
}

// hostOnly strips the port from a uri-host [":" port], keeping an IPv6 literal's brackets.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := indexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := indexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// normalizeHost is hostOnly for configuration: lower case, port dropped.
func normalizeHost(h string) string {
	return strings.ToLower(string(hostOnly([]byte(h))))
}
