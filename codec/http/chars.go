package http

// Byte-class tables from the ABNF of RFC 9110 §5.6 and RFC 3986 §2–3. One 256-entry lookup per
// byte keeps validation branch-light; every table treats bytes >= 0x80 explicitly.

const (
	alphaChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	digitChars     = "0123456789"
	unreservedSet  = alphaChars + digitChars + "-._~"
	subDelimsChars = "!$&'()*+,;="
)

func makeTable(chars string) (t [256]bool) {
	for i := 0; i < len(chars); i++ {
		t[chars[i]] = true
	}
	return t
}

var (
	// tokenTable: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
	// "_" / "`" / "|" / "~" / DIGIT / ALPHA.
	tokenTable = makeTable("!#$%&'*+-.^_`|~" + digitChars + alphaChars)

	// pathTable: the bytes of origin-form = absolute-path [ "?" query ] other than "%":
	// pchar = unreserved / pct-encoded / sub-delims / ":" / "@", plus "/" and "?".
	pathTable = makeTable(unreservedSet + subDelimsChars + ":@/?")

	// regNameTable: reg-name = *( unreserved / pct-encoded / sub-delims ), without "%".
	regNameTable = makeTable(unreservedSet + subDelimsChars)

	// ipLiteralTable: what may appear between "[" and "]": IPv6address and IPvFuture.
	ipLiteralTable = makeTable(unreservedSet + subDelimsChars + ":")

	// schemeTable: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
	schemeTable = makeTable(alphaChars + digitChars + "+-.")

	// fieldValueTable: field-vchar / SP / HTAB; field-vchar = VCHAR / obs-text.
	fieldValueTable = func() (t [256]bool) {
		for c := 0x21; c <= 0x7e; c++ {
			t[c] = true
		}
		for c := 0x80; c <= 0xff; c++ {
			t[c] = true
		}
		t[' '], t['\t'] = true, true
		return t
	}()

	// lowerTable maps ASCII upper-case letters to lower case and every other byte to itself.
	lowerTable = func() (t [256]byte) {
		for i := range t {
			t[i] = byte(i)
		}
		for c := 'A'; c <= 'Z'; c++ {
			t[c] = byte(c) + ('a' - 'A')
		}
		return t
	}()
)

// isHex reports whether c is HEXDIG (either case).
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of a hex digit; c must satisfy isHex.
func unhex(c byte) int64 {
	switch {
	case c <= '9':
		return int64(c - '0')
	case c >= 'a':
		return int64(c-'a') + 10
	default:
		return int64(c-'A') + 10
	}
}

// equalFold reports whether b equals s ignoring ASCII case. No allocation.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerTable[b[i]] != lowerTable[s[i]] {
			return false
		}
	}
	return true
}

// equalFoldBytes is equalFold for two byte slices.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerTable[a[i]] != lowerTable[b[i]] {
			return false
		}
	}
	return true
}

// isToken reports whether b is a non-empty token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// trimOWS strips leading and trailing SP / HTAB.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// validURIChars reports whether every byte of b is in table or starts a pct-encoded triplet
// ("%" HEXDIG HEXDIG).
func validURIChars(b []byte, table *[256]bool) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if table[c] {
			continue
		}
		if c != '%' || i+2 >= len(b) {
			return false
		}
		if !isHex(b[i+1]) || !isHex(b[i+2]) {
			return false
		}
		i += 2
	}
	return true
}
