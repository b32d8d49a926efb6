package http

import (
	"context"
	"testing"
)

// TestBuildRequestAllocations: building the *http.Request from the loop's parse allocates only
// the copy of the head and the Header map (a small map is its header and one group of slots; a
// map for more than eight fields is a table). The request itself, its URL, and the values of up
// to twelve fields live in the reqState the caller allocated.
func TestBuildRequestAllocations(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		max  float64
	}{
		{"two fields", []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: reactord-bench\r\n\r\n"), 3},
		{"ten fields", getTenHeaders, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewParser(Limits{})
			if err != nil {
				t.Fatal(err)
			}
			_, req, err := p.Parse(tc.raw)
			if err != nil || req == nil {
				t.Fatalf("parse: %v %v", req, err)
			}
			rs := &reqState{}
			rs.ctx.init(context.Background(), nil)
			allocs := testing.AllocsPerRun(100, func() {
				hr, err := buildRequest(req, rs, "192.0.2.1:1234", nil)
				if err != nil || hr.Method != "GET" || hr.Context() != &rs.ctx {
					t.Fatalf("buildRequest: %v", err)
				}
			})
			if allocs > tc.max {
				t.Fatalf("buildRequest: %v allocations, want at most %v", allocs, tc.max)
			}
		})
	}
}
