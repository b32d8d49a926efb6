package cpupin

import (
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPinAndUnpin(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := Pin(0, 0); err != nil {
		t.Fatal(err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(0) {
		t.Fatalf("affinity after Pin: %d cpus", set.Count())
	}
	if err := Unpin(0); err != nil {
		t.Fatal(err)
	}
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != runtime.NumCPU() {
		t.Fatalf("affinity after Unpin: %d cpus", set.Count())
	}
}

func TestPinBadCPU(t *testing.T) {
	for _, cpus := range [][]int{nil, {-1}, {runtime.NumCPU()}} {
		if err := Pin(0, cpus...); !errors.Is(err, ErrBadCPU) {
			t.Errorf("%v: %v", cpus, err)
		}
	}
}

func TestRaiseNoFile(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	got, err := RaiseNoFile(256)
	if err != nil || got < 256 {
		t.Fatalf("%d, %v", got, err)
	}
}
