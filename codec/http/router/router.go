// Package router is a small, allocation-free request router for the codec's native handlers.
//
// Patterns are matched segment by segment against the request path:
//
//	/users               a static segment matches itself (compared after percent-decoding
//	                     the request's segment, so "/%75sers" matches too)
//	/users/{id}          {name} matches one non-empty segment; its raw value is in Params
//	/files/{path...}     a final {name...} matches the rest of the path, slashes included,
//	                     possibly empty ("/files/" matches with path "")
//	/users/              a trailing slash is a segment of its own: "/users" and "/users/" are
//	                     different routes (no redirects are made)
//
// Precedence is by segment, left to right: a static segment beats {name}, which beats
// {name...}. A request is served by the first route in that order whose path matches and which
// has its method; the search backtracks, so "/a/{x}/c" still serves "/a/b/c" when "/a/b/d" is
// also registered. Registering two routes that match the same paths with the same method is
// an error (ErrConflict) naming both, as is any malformed pattern (ErrInvalidPattern).
//
// Methods: each route has a table of methods. A request whose path matches but whose method
// does not gets 405 Method Not Allowed with an Allow header listing the methods of every route
// matching the path. HEAD is served by the GET handler when no HEAD handler is registered (the
// ResponseWriter then sends the headers without the body). OPTIONS is answered automatically
// with 204 No Content and the Allow header, unless an OPTIONS handler is registered for the
// route (a CORS preflight, say). Everything else gets 404. SetNotFound and SetMethodNotAllowed
// replace the text/plain bodies of those answers (a JSON API's error format).
//
// Cost: a lookup walks one node per segment and compares static segments with a length check
// and a byte compare; parameters are recorded as offsets into the path and handed to the
// handler by value (Params), so routing allocates nothing (TestRouterZeroAlloc; the benchmarks
// against fasthttp/router, chi and http.ServeMux are in docs/BENCHMARKS.md).
//
// A Router is built before the server starts (Add is not safe concurrently with serving, and
// is refused once the router has served a request) and then serves every loop at once.
package router

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	rhttp "github.com/reactord/reactord/codec/http"
)

// HandlerFunc handles a routed request. w and r are the codec's (valid only during the call);
// p holds the route's parameters.
type HandlerFunc func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params)

// Errors of Add, matched with errors.Is; the messages name the pattern (and for a conflict the
// route registered earlier).
var (
	// ErrInvalidPattern: the pattern is empty, does not start with "/", has a malformed or
	// misplaced {name} or {name...}, a repeated name, more than MaxParams parameters, or a
	// byte a path segment cannot hold ('%', '?', '#', a space or control character).
	ErrInvalidPattern = errors.New("router: invalid pattern")
	// ErrConflict: a route with the same method already matches exactly the same paths.
	ErrConflict = errors.New("router: conflicting routes")
	// ErrServing: Add after the router has started serving requests.
	ErrServing = errors.New("router: routes added after serving began")
	// ErrInvalidArgument (rhttp.ErrInvalidArgument): a nil handler, or a method that is not
	// an HTTP token.
	ErrInvalidArgument = rhttp.ErrInvalidArgument
)

// Router routes requests to handlers by method and path. It is an rhttp.Handler: pass it to
// rhttp.NewServer. The zero value is not usable; call New.
type Router struct {
	root     node
	notFound HandlerFunc
	notAllow HandlerFunc
	serving  atomic.Bool
}

// New returns an empty router.
func New() *Router { return &Router{} }

// node is one segment position of the route tree.
type node struct {
	lits   []string // static children's segments (decoded form), parallel to static
	firsts []byte   // the first byte of each of lits (0 for an empty one): a cheap pre-filter
	static []*node
	param  *node // the {name} child
	leaf   *leaf // routes ending at this node
	wild   *leaf // routes ending with {name...} after this node
}

// leaf is the method table of one path shape.
type leaf struct {
	entries []entry
	allow   string // the Allow header for this shape alone
	get     *entry
	head    *entry
	options *entry
}

type entry struct {
	method  string
	pattern string
	names   []string
	h       HandlerFunc
}

// Add registers h for requests with method (case-sensitive, e.g. "GET") whose path matches
// pattern. Errors: ErrInvalidPattern and ErrConflict (wrapped, naming the patterns),
// ErrInvalidArgument for a nil h or an invalid method, ErrServing once the router has served.
// Not safe concurrently with itself or with serving.
func (rt *Router) Add(method, pattern string, h HandlerFunc) error {
	if rt.serving.Load() {
		return fmt.Errorf("%w: %s %s", ErrServing, method, pattern)
	}
	if h == nil {
		return fmt.Errorf("%w: nil handler for %s %s", ErrInvalidArgument, method, pattern)
	}
	if !isToken(method) {
		return fmt.Errorf("%w: method %q for %s is not an HTTP token", ErrInvalidArgument, method, pattern)
	}
	segs, names, err := parsePattern(pattern)
	if err != nil {
		return err
	}
	n := &rt.root
	for _, s := range segs {
		switch {
		case s.wild:
			if n.wild == nil {
				n.wild = &leaf{}
			}
			return n.wild.add(method, pattern, names, h)
		case s.param:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			n = n.child(s.lit)
		}
	}
	if n.leaf == nil {
		n.leaf = &leaf{}
	}
	return n.leaf.add(method, pattern, names, h)
}

func (n *node) child(lit string) *node {
	for i, l := range n.lits {
		if l == lit {
			return n.static[i]
		}
	}
	c := &node{}
	first := byte(0)
	if lit != "" {
		first = lit[0]
	}
	n.firsts = append(n.firsts, first)
	n.lits = append(n.lits, lit)
	n.static = append(n.static, c)
	return c
}

func (l *leaf) add(method, pattern string, names []string, h HandlerFunc) error {
	for _, e := range l.entries {
		if e.method == method {
			return fmt.Errorf("%w: %s %s matches the same paths as %s %s, registered earlier",
				ErrConflict, method, pattern, e.method, e.pattern)
		}
	}
	l.entries = append(l.entries, entry{method: method, pattern: pattern, names: names, h: h})
	// Pointers into entries are taken after the append: the slice may have moved.
	l.get, l.head, l.options = nil, nil, nil
	for i := range l.entries {
		switch l.entries[i].method {
		case "GET":
			l.get = &l.entries[i]
		case "HEAD":
			l.head = &l.entries[i]
		case "OPTIONS":
			l.options = &l.entries[i]
		}
	}
	l.allow = allowHeader(l.methods(nil))
	return nil
}

// methods appends the methods the leaf answers: its own, HEAD with GET, and OPTIONS.
func (l *leaf) methods(dst []string) []string {
	for _, e := range l.entries {
		dst = append(dst, e.method)
	}
	if l.get != nil && l.head == nil {
		dst = append(dst, "HEAD")
	}
	if l.options == nil {
		dst = append(dst, "OPTIONS")
	}
	return dst
}

// methodRank orders the Allow header: the common methods first in this order, OPTIONS last,
// others alphabetically between.
var methodRank = map[string]int{"GET": 0, "HEAD": 1, "POST": 2, "PUT": 3, "PATCH": 4, "DELETE": 5, "CONNECT": 6, "TRACE": 7, "OPTIONS": 9}

func allowHeader(ms []string) string {
	rank := func(m string) int {
		if r, ok := methodRank[m]; ok {
			return r
		}
		return 8
	}
	sort.Slice(ms, func(i, j int) bool {
		ri, rj := rank(ms[i]), rank(ms[j])
		if ri != rj {
			return ri < rj
		}
		return ms[i] < ms[j]
	})
	out := ms[:0]
	for i, m := range ms {
		if i == 0 || m != ms[i-1] {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// segment is one parsed pattern segment.
type segment struct {
	lit   string
	param bool
	wild  bool
}

func parsePattern(pattern string) ([]segment, []string, error) {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidPattern, pattern, fmt.Sprintf(why, args...))
	}
	if pattern == "" || pattern[0] != '/' {
		return nil, nil, bad("must start with \"/\"")
	}
	parts := strings.Split(pattern[1:], "/")
	segs := make([]segment, 0, len(parts))
	var names []string
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			if !strings.HasSuffix(p, "}") {
				return nil, nil, bad("segment %q: a {name} must be a whole segment", p)
			}
			name := p[1 : len(p)-1]
			wild := strings.HasSuffix(name, "...")
			name = strings.TrimSuffix(name, "...")
			if !isIdent(name) {
				return nil, nil, bad("segment %q: parameter name must be letters, digits and _, not starting with a digit", p)
			}
			if wild && i != len(parts)-1 {
				return nil, nil, bad("segment %q: {name...} must be the last segment", p)
			}
			for _, n := range names {
				if n == name {
					return nil, nil, bad("parameter %q appears twice", name)
				}
			}
			if len(names) == MaxParams {
				return nil, nil, bad("more than %d parameters", MaxParams)
			}
			names = append(names, name)
			segs = append(segs, segment{param: !wild, wild: wild})
			continue
		}
		for j := 0; j < len(p); j++ {
			switch c := p[j]; {
			case c == '{' || c == '}':
				return nil, nil, bad("segment %q: braces must enclose a whole segment", p)
			case c == '%':
				return nil, nil, bad("segment %q: write static segments decoded (no %%XX); requests are decoded before comparing", p)
			case c == '?' || c == '#':
				return nil, nil, bad("segment %q: %q cannot appear in a path", p, c)
			case c <= ' ' || c == 0x7f:
				return nil, nil, bad("segment %q: space or control character", p)
			}
		}
		segs = append(segs, segment{lit: p})
	}
	return segs, names, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// SetNotFound replaces the default 404 answer (text/plain "Not Found"). The status is set to
// 404 before h runs; h writes the body (and may set headers). p is empty. nil restores the
// default.
func (rt *Router) SetNotFound(h HandlerFunc) { rt.notFound = h }

// SetMethodNotAllowed replaces the default 405 answer's body. The status (405) and the Allow
// header are set before h runs. nil restores the default.
func (rt *Router) SetMethodNotAllowed(h HandlerFunc) { rt.notAllow = h }

// maxAllowLeaves bounds the routes whose methods are merged into one Allow header; past it (a
// path matched by more than this many overlapping patterns) the later ones are left out.
const maxAllowLeaves = 8

// matcher is the state of one lookup; it lives on the caller's stack.
type matcher struct {
	path    []byte
	method  []byte
	p       Params
	leaves  [maxAllowLeaves]*leaf // routes whose path matched, in precedence order
	nleaves int
}

// Lookup finds the handler for method and path (as Request.Method and Request.Path return
// them) without calling it. It returns the handler and its parameters, or a nil handler with
// pathMatched reporting whether some route matches the path with another method (the case for
// 405). It allocates nothing and is safe from any goroutine once routes are added.
func (rt *Router) Lookup(method, path []byte) (h HandlerFunc, p Params, pathMatched bool) {
	var m matcher
	e := rt.find(&m, method, path)
	if e == nil {
		return nil, Params{}, m.nleaves > 0
	}
	return e.h, m.p, true
}

func (rt *Router) find(m *matcher, method, path []byte) *entry {
	if len(path) == 0 || path[0] != '/' {
		return nil // "*" (OPTIONS *) and CONNECT's authority-form have no route
	}
	m.path, m.method = path, method
	m.p.path = path
	return m.walk(&rt.root, 1)
}

// walk matches the segment starting at pos (just after a '/') and the rest of the path below n.
func (m *matcher) walk(n *node, pos int) *entry {
	path := m.path
	end := pos
	for end < len(path) && path[end] != '/' {
		end++
	}
	seg := path[pos:end]
	last := end == len(path)
	if len(n.static) > 0 {
		encoded := false
		for _, c := range seg {
			if c == '%' {
				encoded = true
				break
			}
		}
		// Literals are distinct, so at most one static child matches.
		if encoded {
			for i, lit := range n.lits {
				if equalDecoded(seg, lit) {
					if e := m.next(n.static[i], end, last); e != nil {
						return e
					}
					break
				}
			}
		} else {
			first := byte(0)
			if len(seg) > 0 {
				first = seg[0]
			}
			for i, f := range n.firsts {
				if f == first && string(seg) == n.lits[i] {
					if e := m.next(n.static[i], end, last); e != nil {
						return e
					}
					break
				}
			}
		}
	}
	if n.param != nil && len(seg) > 0 && m.p.n < MaxParams {
		k := m.p.n
		m.p.vals[k] = span{int32(pos), int32(end - pos)}
		m.p.n++
		if e := m.next(n.param, end, last); e != nil {
			return e
		}
		m.p.n = k
	}
	if n.wild != nil && m.p.n < MaxParams { // always true for valid patterns; kept as a bound
		k := m.p.n
		m.p.vals[k] = span{int32(pos), int32(len(path) - pos)}
		m.p.n++
		if e := m.pick(n.wild); e != nil {
			return e
		}
		m.p.n = k
	}
	return nil
}

// next continues below child c after the segment ending at end.
func (m *matcher) next(c *node, end int, last bool) *entry {
	if !last {
		return m.walk(c, end+1)
	}
	if c.leaf == nil {
		return nil
	}
	return m.pick(c.leaf)
}

// pick returns the leaf's entry for the request method (HEAD falling back to GET), noting the
// leaf as path-matching for the Allow header.
func (m *matcher) pick(l *leaf) *entry {
	if m.nleaves < maxAllowLeaves {
		m.leaves[m.nleaves] = l
	}
	m.nleaves++
	e := l.lookup(m.method)
	if e != nil {
		m.p.names = e.names
	}
	return e
}

// lookup returns the entry for method (HEAD falling back to GET), or nil.
func (l *leaf) lookup(method []byte) *entry {
	var e *entry
	switch string(method) {
	case "GET":
		e = l.get
	case "HEAD":
		e = l.head
		if e == nil {
			e = l.get
		}
	case "OPTIONS":
		e = l.options
	default:
		for i := range l.entries {
			if l.entries[i].method == string(method) {
				e = &l.entries[i]
				break
			}
		}
	}
	return e
}

// Handle routes r (rhttp.Handler). It runs on the connection's loop goroutine, any number of
// loops at once.
func (rt *Router) Handle(w *rhttp.ResponseWriter, r *rhttp.Request) {
	if !rt.serving.Load() {
		rt.serving.Store(true)
	}
	var m matcher
	if e := rt.find(&m, r.Method(), r.Path()); e != nil {
		e.h(w, r, m.p)
		return
	}
	if m.nleaves == 0 {
		w.SetStatus(rhttp.StatusNotFound)
		if rt.notFound != nil {
			rt.notFound(w, r, Params{})
			return
		}
		w.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteString("Not Found\n")
		return
	}
	m.setAllow(w)
	if string(r.Method()) == "OPTIONS" {
		w.SetStatus(rhttp.StatusNoContent)
		return
	}
	w.SetStatus(rhttp.StatusMethodNotAllowed)
	if rt.notAllow != nil {
		rt.notAllow(w, r, Params{})
		return
	}
	w.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteString("Method Not Allowed\n")
}

// setAllow sets the Allow header: the precomputed one when a single route matched the path,
// else the merged methods of every matching route.
func (m *matcher) setAllow(w *rhttp.ResponseWriter) {
	n := min(m.nleaves, maxAllowLeaves)
	if n == 1 {
		w.Set("Allow", m.leaves[0].allow)
		return
	}
	var buf [32]string
	ms := buf[:0]
	for _, l := range m.leaves[:n] {
		ms = l.methods(ms)
	}
	w.Set("Allow", allowHeader(ms))
}
