package proxy

import (
	"time"

	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// timeNow is the wall clock health decisions use (ejections must survive loop changes).
var timeNow = time.Now

// healthCheck is a group's optional active check: every interval, a GET of path to each
// upstream on its own small client; a status other than 2xx or 3xx, or no answer within the
// timeout, takes the upstream out of the group until a check succeeds again.
type healthCheck struct {
	path     string
	interval time.Duration
	timeout  time.Duration
	clients  []*codec.Client // one per upstream, same order as the group's
	inFlight []bool          // loop goroutine only
	timer    *reactor.Timer
}

// start runs the checks on loop l from now on. Loop goroutine (it is posted there).
func (hc *healthCheck) start(g *Group, l *reactor.Loop) {
	hc.inFlight = make([]bool, len(g.ups))
	hc.run(g, l)
	hc.timer = l.Every(hc.interval, func() { hc.run(g, l) })
}

// run sends one check to every upstream whose previous check has finished.
func (hc *healthCheck) run(g *Group, l *reactor.Loop) {
	for i, u := range g.ups {
		if hc.inFlight[i] {
			continue
		}
		i, u := i, u
		req := &codec.ClientRequest{Target: hc.path, Header: []codec.HeaderField{{Name: "User-Agent", Value: "reactord-health-check"}}}
		err := hc.clients[i].Do(l, req, func(r *codec.ClientResponse, err error) {
			hc.inFlight[i] = false
			ok := err == nil && r.Status() >= 200 && r.Status() < 400
			u.checkDown.Store(!ok)
			if ok {
				u.succeeded()
			}
		})
		if err == nil {
			hc.inFlight[i] = true
		}
	}
}

// stop ends the checks and closes their clients. Any goroutine.
func (hc *healthCheck) stop() {
	for _, c := range hc.clients {
		c.Close()
	}
}
