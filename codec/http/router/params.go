package router

// MaxParams is the most {name} and {name...} segments one pattern may hold.
const MaxParams = 8

// span is a window [off, off+n) of the request path.
type span struct{ off, n int32 }

// Params are the values of a matched route's {name} and {name...} segments. A handler gets them
// by value, so reading them allocates nothing; the values are views into the request's path,
// still percent-encoded (decode with Unescape or Params.Unescaped), valid only during the
// handler call like every view of the request.
type Params struct {
	path  []byte
	names []string // the route's names, in pattern order
	vals  [MaxParams]span
	n     int
}

// Len returns the number of parameters.
func (p Params) Len() int { return p.n }

// At returns the i-th parameter's name and raw value (0 <= i < Len), in pattern order;
// out-of-range i returns "", nil.
func (p Params) At(i int) (name string, value []byte) {
	if i < 0 || i >= p.n {
		return "", nil
	}
	v := p.vals[i]
	return p.names[i], p.path[v.off : v.off+v.n : v.off+v.n]
}

// Get returns the raw (percent-encoded) value of the parameter named name, or nil if the route
// has no such parameter. A trailing {name...} may be empty (then a non-nil empty slice).
func (p Params) Get(name string) []byte {
	for i := 0; i < p.n; i++ {
		if p.names[i] == name {
			v := p.vals[i]
			return p.path[v.off : v.off+v.n : v.off+v.n]
		}
	}
	return nil
}

// Unescaped returns the parameter named name percent-decoded (see Unescape: no copy when
// nothing is encoded, otherwise decoded into dst). ok is false when the route has no such
// parameter; err is ErrBadEscape for a malformed escape.
func (p Params) Unescaped(name string, dst []byte) (value []byte, ok bool, err error) {
	for i := 0; i < p.n; i++ {
		if p.names[i] == name {
			v := p.vals[i]
			value, err = Unescape(dst, p.path[v.off:v.off+v.n:v.off+v.n])
			return value, true, err
		}
	}
	return nil, false, nil
}
