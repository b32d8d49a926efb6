package http

// parseField parses the field line buf[start:end] (line terminator excluded, end > start) as
// field-name ":" OWS field-value OWS (RFC 9112 §5). first says whether it is the first line of
// its section, which decides how a leading SP/HTAB is reported. Shared by the header section
// and the chunked trailer section.
func parseField(buf []byte, start, end int, first bool) (field, *ParseError) {
	line := buf[start:end]
	if c := line[0]; c == ' ' || c == '\t' {
		// A line starting with whitespace is obs-fold after a field line (RFC 9112 §5.2) and
		// whitespace before the first field line otherwise (RFC 9112 §2.2); both are rejected
		// because lenient peers disagree on what they mean.
		if first {
			return field{}, ErrLeadingWhitespace
		}
		return field{}, ErrObsFold
	}
	colon := -1
	for i, c := range line {
		if tokenTable[c] {
			continue
		}
		switch c {
		case ':':
			colon = i
		case ' ', '\t':
			// RFC 9112 §5.1: no whitespace is allowed between the field name and colon; a
			// server MUST reject such a request with 400.
			for _, d := range line[i:] {
				if d == ':' {
					return field{}, ErrSpaceBeforeColon
				}
			}
			return field{}, ErrFieldLine
		case '\r':
			return field{}, ErrBareCR
		default:
			return field{}, ErrFieldName
		}
		break
	}
	if colon < 0 {
		return field{}, ErrFieldLine
	}
	if colon == 0 {
		return field{}, ErrFieldName
	}
	v0, v1 := colon+1, len(line)
	for v0 < v1 && (line[v0] == ' ' || line[v0] == '\t') {
		v0++
	}
	for v1 > v0 && (line[v1-1] == ' ' || line[v1-1] == '\t') {
		v1--
	}
	for _, c := range line[v0:v1] {
		if !fieldValueTable[c] {
			if c == '\r' {
				return field{}, ErrBareCR
			}
			return field{}, ErrFieldValue
		}
	}
	return field{name: mkspan(start, start+colon), value: mkspan(start+v0, start+v1)}, nil
}

// scanField is parseField's single-pass fast path for the common case: it parses the field
// line starting at buf[start] if the line is complete (ends in CRLF) and valid, returning the
// field and the offset of the LF. ok is false for anything else (incomplete, bare LF, an
// invalid byte, an empty line), and the caller then takes the general path, which reports the
// precise error; so the verdict never depends on which path ran.
func scanField(buf []byte, start int) (f field, lf int, ok bool) {
	i := start
	for i < len(buf) && tokenTable[buf[i]] {
		i++
	}
	if i == start || i >= len(buf) || buf[i] != ':' {
		return field{}, 0, false
	}
	colon := i
	i++
	for i < len(buf) && (buf[i] == ' ' || buf[i] == '\t') {
		i++
	}
	v0 := i
	for i < len(buf) && fieldValueTable[buf[i]] {
		i++
	}
	// fieldValueTable holds neither CR nor LF: the value ends at the first byte that is not a
	// value byte, which must be the CR of the CRLF ending the line.
	if i+1 >= len(buf) || buf[i] != '\r' || buf[i+1] != '\n' {
		return field{}, 0, false
	}
	v1 := i
	for v1 > v0 && (buf[v1-1] == ' ' || buf[v1-1] == '\t') {
		v1--
	}
	return field{name: mkspan(start, colon), value: mkspan(v0, v1)}, i + 1, true
}
