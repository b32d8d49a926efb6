package reactor

import (
	"testing"
	"unsafe"
)

// TestConnSize guards the memory an idle connection costs: the Conn struct must stay within
// its allocation size class (the Go allocator rounds 97..112 bytes up to 112), and the pieces
// borrowed or made on demand stay out of it. A field that pushes it over belongs in connExtra.
func TestConnSize(t *testing.T) {
	const class = 112
	if got := unsafe.Sizeof(Conn{}); got > class {
		t.Errorf("Conn is %d bytes, over the %d-byte size class: move rarely needed state to connExtra", got, class)
	}
	t.Logf("Conn %d bytes, connIO %d, connExtra %d", unsafe.Sizeof(Conn{}), unsafe.Sizeof(connIO{}), unsafe.Sizeof(connExtra{}))
}
