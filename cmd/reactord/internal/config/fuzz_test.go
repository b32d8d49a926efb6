package config

import "testing"

// FuzzParseSize checks that parseSize never panics and that what it accepts prints back to a
// value it parses to the same number.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "64KiB", "1 MiB", "3GiB", "12B", "-1", "1.5MiB", "9223372036854775807", "KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil || n < 0 {
			return
		}
		v := &sizeValue{p: new(int64)}
		*v.p = n
		back, err := parseSize(v.String())
		if err != nil || back != n {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, n, v.String(), back, err)
		}
	})
}
