package progress

import (
	"testing"
	"time"
)

// Under go test stdout is not a terminal, so New must return a bar that draws nothing; every
// method must also be safe on nil and zero Bars.
func TestNoTerminalIsNoOp(t *testing.T) {
	for _, b := range []*Bar{New(time.Hour, "x"), New(time.Millisecond, "short"), nil, {}} {
		if b != nil && b.bar != nil {
			t.Fatal("bar drawn without a terminal")
		}
		b.Describe("d")
		b.At(time.Second)
		b.Step(time.Second)
		b.Finish()
	}
}
