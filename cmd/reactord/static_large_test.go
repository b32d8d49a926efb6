package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestStaticLargeFile: files of several MiB, whole and by ranges that start inside a page, to
// clients fetching concurrently over keep-alive connections, arrive byte-exact, and the
// descriptors the transfers used are given back. With REACTOR_POLLER=uring these go through
// the completion mode's splices (files from 512 KiB), elsewhere through sendfile(2).
func TestStaticLargeFile(t *testing.T) {
	root := t.TempDir()
	content := make([]byte, 5<<20+321)
	rand.New(rand.NewSource(5)).Read(content)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-loops", "1", "-access-log", "off")
	fdsBefore := d.openFDs()
	c := client(t)
	cases := []struct {
		rng      string
		from, to int // the expected bytes: content[from:to]
	}{
		{"", 0, len(content)},
		{"bytes=1000-", 1000, len(content)},
		{"bytes=4097-3000000", 4097, 3000001},
		{"bytes=-700000", len(content) - 700000, len(content)},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(cases))
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cases {
				tc := cases[(i+w)%len(cases)]
				req, _ := http.NewRequest("GET", d.url("/big.bin"), nil)
				if tc.rng != "" {
					req.Header.Set("Range", tc.rng)
				}
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- fmt.Errorf("%q: %w", tc.rng, err)
					return
				}
				if !bytes.Equal(body, content[tc.from:tc.to]) {
					errs <- fmt.Errorf("%q: status %d, %d bytes, want %d, or they differ", tc.rng, resp.StatusCode, len(body), tc.to-tc.from)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The loop keeps up to 4 idle pipes (2 descriptors each) for the next large file.
	c.Transport.(*http.Transport).CloseIdleConnections()
	testsupport.Eventually(t, 10*time.Second, "descriptors back to their count before the requests, bar pooled pipes", func() bool {
		return d.openFDs() <= fdsBefore+8
	})
	d.stop()
}
