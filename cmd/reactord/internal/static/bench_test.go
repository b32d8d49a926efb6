package static

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkServe measures the decision for a small file: a full GET (open, fstat, headers;
// the file is closed unsent) and a conditional GET answered 304.
func BenchmarkServe(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "app.js"), make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	// A deployed file, not one written in the current second (whose Last-Modified is sent
	// with a Date of its own, see appendValidators).
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(root, "app.js"), old, old); err != nil {
		b.Fatal(err)
	}
	for _, follow := range []bool{false, true} {
		fs, err := New(Options{Root: root, FollowSymlinks: follow})
		if err != nil {
			b.Fatal(err)
		}
		name := "root"
		if follow {
			name = "follow"
		}
		first := fs.Serve(&Request{Method: "GET", Target: "/app.js"})
		first.Close()
		etag := first.Get("ETag")
		b.Run(name+"/200", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := fs.Serve(&Request{Method: "GET", Target: "/app.js"})
				if r.Status != 200 {
					b.Fatal(r.Status)
				}
				r.Close()
			}
		})
		b.Run(name+"/304", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := fs.Serve(&Request{Method: "GET", Target: "/app.js", IfNoneMatch: etag})
				if r.Status != 304 {
					b.Fatal(r.Status)
				}
			}
		})
		fs.Close()
	}
}
