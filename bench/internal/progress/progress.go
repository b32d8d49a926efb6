// Package progress shows a progress bar on a terminal for runs that last more than a few
// seconds, and nothing at all when output goes to a file or a pipe (CI logs, -json runs).
package progress

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// minDuration is the shortest run worth a bar.
const minDuration = 3 * time.Second

// Bar tracks progress in seconds of planned work. The zero value and a nil *Bar do nothing.
type Bar struct {
	bar  *progressbar.ProgressBar
	done time.Duration // work finished in earlier steps
}

// New returns a bar for total planned work, drawn on stderr, or a no-op Bar when total is
// short or stdout or stderr is not a terminal.
func New(total time.Duration, description string) *Bar {
	if total < minDuration || !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stderr.Fd())) {
		return &Bar{}
	}
	return &Bar{bar: progressbar.NewOptions64(int64(total/time.Millisecond),
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
	)}
}

// Describe changes the text shown before the bar (the step running now).
func (b *Bar) Describe(s string) {
	if b == nil || b.bar == nil {
		return
	}
	b.bar.Describe(s)
}

// At sets progress to the finished steps plus elapsed time inside the current one. It may be
// called from any goroutine.
func (b *Bar) At(elapsed time.Duration) {
	if b == nil || b.bar == nil {
		return
	}
	_ = b.bar.Set64(int64((b.done + elapsed) / time.Millisecond))
}

// Step marks a step of planned length d as finished.
func (b *Bar) Step(d time.Duration) {
	if b == nil || b.bar == nil {
		return
	}
	b.done += d
	_ = b.bar.Set64(int64(b.done / time.Millisecond))
}

// Finish removes the bar from the terminal.
func (b *Bar) Finish() {
	if b == nil || b.bar == nil {
		return
	}
	// Exit stops the bar without a final render; Clear wipes the line it was drawn on, so the
	// report that follows starts on a clean line.
	_ = b.bar.Exit()
	_ = b.bar.Clear()
	b.bar = nil
}
