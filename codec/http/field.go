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
