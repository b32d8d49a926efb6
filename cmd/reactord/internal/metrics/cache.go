package metrics

import (
	"bytes"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// cachedGatherer gathers an expensive registry on its own goroutine every interval and hands
// out the latest result, so a scrape never waits for it.
type cachedGatherer struct {
	src prometheus.Gatherer

	mu   sync.Mutex
	mfs  []*dto.MetricFamily
	text []byte // mfs in the text exposition format, or nil after an error
	err  error

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// newCachedGatherer gathers src once (so the first scrape is complete) and starts the
// refreshing goroutine.
func newCachedGatherer(src prometheus.Gatherer, every time.Duration) *cachedGatherer {
	c := &cachedGatherer{src: src, stop: make(chan struct{}), done: make(chan struct{})}
	c.refresh()
	go c.run(every)
	return c
}

func (c *cachedGatherer) run(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.refresh()
		}
	}
}

func (c *cachedGatherer) refresh() {
	mfs, err := c.src.Gather()
	var text []byte
	if err == nil {
		var b bytes.Buffer
		enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err = enc.Encode(mf); err != nil {
				break
			}
		}
		text = b.Bytes()
	}
	c.mu.Lock()
	c.mfs, c.err = mfs, err
	if err == nil {
		c.text = text
	} else {
		c.text = nil
	}
	c.mu.Unlock()
}

// Text returns the latest families already encoded in the text format (shared: read-only),
// or the gathering error.
func (c *cachedGatherer) Text() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.text, c.err
}

// Gather returns the latest families. They are shared between scrapes and must be treated
// as read-only, which prometheus.Gatherers and the encoders do.
func (c *cachedGatherer) Gather() ([]*dto.MetricFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mfs, c.err
}

func (c *cachedGatherer) close() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}
