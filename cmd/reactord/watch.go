package main

import (
	"crypto/sha256"
	"os"
	"time"

	"go.uber.org/zap"
)

// watcher notices a change of the -config file's content (-watch-config), for deployments
// where nobody sends SIGHUP: a Kubernetes ConfigMap mounted as a volume is updated by the
// kubelet in place, by writing the new files into a fresh directory and renaming a symbolic
// link (..data) over the old one, so the path the daemon reads stays valid and only its
// content changes. Comparing the content by hash at a fixed interval sees that swap, an
// editor's write-and-rename and a plain overwrite alike, follows symbolic links (which
// inotify on the file would not: it would keep watching the old target), and costs one small
// read per interval. A read that fails (the file missing for a moment) is not a change.
//
// The watcher runs on the control goroutine: C delivers the ticks, changed reads the file.
type watcher struct {
	path  string
	log   *zap.Logger
	tick  *time.Ticker
	sum   [sha256.Size]byte
	valid bool
}

// newWatcher watches path every interval; with an empty path or a zero interval it never
// ticks.
func newWatcher(path string, interval time.Duration, log *zap.Logger) *watcher {
	w := &watcher{log: log}
	w.reset(path, interval)
	return w
}

// reset applies a (reloaded) path and interval. The content seen now becomes the reference,
// so a reload caused by SIGHUP is not followed by a second one for the same change.
func (w *watcher) reset(path string, interval time.Duration) {
	w.stop()
	w.path = path
	if path == "" || interval <= 0 {
		return
	}
	w.tick = time.NewTicker(interval)
	w.sum, w.valid = w.read()
}

// C returns the tick channel (nil, blocking for ever, when not watching).
func (w *watcher) C() <-chan time.Time {
	if w.tick == nil {
		return nil
	}
	return w.tick.C
}

// changed reads the file and reports whether its content differs from the last content
// seen. A failed read changes nothing.
func (w *watcher) changed() bool {
	sum, ok := w.read()
	if !ok || (w.valid && sum == w.sum) {
		return false
	}
	w.sum, w.valid = sum, true
	return true
}

func (w *watcher) read() ([sha256.Size]byte, bool) {
	b, err := os.ReadFile(w.path)
	if err != nil {
		w.log.Debug("watch-config: cannot read the file", zap.String("path", w.path), zap.Error(err))
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(b), true
}

func (w *watcher) stop() {
	if w.tick != nil {
		w.tick.Stop()
		w.tick = nil
	}
}
