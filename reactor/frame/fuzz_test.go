package frame

import (
	"bytes"
	"errors"
	"testing"
)

// cuts splits data at the positions given by the bytes of cutsSeed, so one fuzz input
// exercises many segmentations.
func cuts(data, cutsSeed []byte) [][]byte {
	var out [][]byte
	for _, c := range cutsSeed {
		if len(data) == 0 {
			break
		}
		n := int(c)%len(data) + 1
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

// referenceLines splits a whole stream the obvious way: complete lines up to the first one
// longer than max (then an error), a trailing partial line left over.
func referenceLines(stream []byte, max int) (frames []string, tooLong bool) {
	for {
		i := bytes.IndexByte(stream, '\n')
		if i < 0 {
			// The partial line: too long already if it cannot end within max.
			if len(stream) > max+1 || len(stream) == max+1 && stream[max] != '\r' {
				return frames, true
			}
			return frames, false
		}
		line := bytes.TrimSuffix(stream[:i], []byte("\r"))
		if len(line) > max {
			return frames, true
		}
		frames = append(frames, string(line))
		stream = stream[i+1:]
	}
}

// FuzzLines checks that Lines frames a stream the same whatever way it is cut into reads, and
// the same as the reference splitter.
func FuzzLines(f *testing.F) {
	f.Add([]byte("GET k\r\nSET k v\nPING\r\n"), []byte{1, 3, 2}, uint8(8))
	f.Add([]byte("abcdefghij\n"), []byte{5}, uint8(4))
	f.Add([]byte("abcd\r"), []byte{4}, uint8(4))
	f.Add([]byte("\r\n\n\r\r\n"), []byte{0, 0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, stream, seed []byte, max8 uint8) {
		max := int(max8) + 1
		l := Lines{Max: max}
		got, err := simulate(l, cuts(stream, seed))
		whole, werr := simulate(l, [][]byte{stream})
		want, tooLong := referenceLines(stream, max)
		if (err != nil) != tooLong || (werr != nil) != tooLong {
			t.Fatalf("errors: split %v, whole %v, reference too long %v", err, werr, tooLong)
		}
		if err != nil && !errors.Is(err, ErrTooLong) {
			t.Fatalf("error %v is not ErrTooLong", err)
		}
		// With a too-long line the split run may fail before all earlier lines were seen
		// only if they were in the same read; it never hands out a frame the reference lacks.
		if !tooLong && (len(got) != len(want) || len(whole) != len(want)) {
			t.Fatalf("frames: split %q, whole %q, reference %q", got, whole, want)
		}
		for i := range got {
			if i >= len(want) || got[i] != want[i] {
				t.Fatalf("frame %d: %q, reference %q", i, got, want)
			}
		}
	})
}

// FuzzLengthPrefixed checks segmentation independence and that no frame exceeds Max.
func FuzzLengthPrefixed(f *testing.F) {
	f.Add([]byte("\x00\x05hello\x00\x00\x00\x03abc"), []byte{1, 2}, uint8(2), uint16(16), false)
	f.Add([]byte("\xff\xff\xff\xff"), []byte{1}, uint8(4), uint16(100), true)
	f.Fuzz(func(t *testing.T, stream, seed []byte, sizeSel uint8, max16 uint16, little bool) {
		fr := LengthPrefixed{Size: []int{1, 2, 4, 8}[sizeSel%4], Max: int(max16) + 1, LittleEndian: little}
		got, err := simulate(fr, cuts(stream, seed))
		whole, werr := simulate(fr, [][]byte{stream})
		if (err == nil) != (werr == nil) || len(got) != len(whole) {
			t.Fatalf("split %q %v, whole %q %v", got, err, whole, werr)
		}
		for i := range got {
			if got[i] != whole[i] || len(got[i]) > fr.Max {
				t.Fatalf("frame %d: split %q whole %q (max %d)", i, got[i], whole[i], fr.Max)
			}
		}
	})
}
