package procstat

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm may hold spaces and parentheses; utime=250 stime=50 ticks.
	line := "1234 (we ird) (name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	tests := []struct {
		name  string
		in    string
		ticks int64
		want  CPU
		err   error
	}{
		{"parens in comm", line, 100, CPU{User: 2500 * time.Millisecond, System: 500 * time.Millisecond}, nil},
		{"other USER_HZ", line, 250, CPU{User: time.Second, System: 200 * time.Millisecond}, nil},
		{"no paren", "1234 comm S 1", 100, CPU{}, ErrFormat},
		{"too short", "1 (x) S 1 2 3", 100, CPU{}, ErrFormat},
		{"bad number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 zz 50 0", 100, CPU{}, ErrFormat},
		{"bad ticks", line, 0, CPU{}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in), tt.ticks)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
	c := CPU{User: 3, System: 4}
	if c.Total() != 7 || c.Sub(CPU{User: 1, System: 1}) != (CPU{User: 2, System: 3}) {
		t.Fatal("Total/Sub")
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tbench\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n"
	if v, err := ParseStatusKB([]byte(status), "VmRSS"); err != nil || v != 12345 {
		t.Fatalf("VmRSS = %d, %v", v, err)
	}
	if _, err := ParseStatusKB([]byte(status), "VmSwap"); !errors.Is(err, ErrFormat) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := ParseStatusKB([]byte("VmRSS:\tlots kB\n"), "VmRSS"); !errors.Is(err, ErrFormat) {
		t.Fatalf("bad value: %v", err)
	}
}

func TestParseIO(t *testing.T) {
	in := "rchar: 100\nwchar: 200\nsyscr: 7\nsyscw: 9\nread_bytes: 0\n"
	got, err := ParseIO([]byte(in))
	if err != nil || got != (IO{ReadCalls: 7, WriteCalls: 9}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if d := got.Sub(IO{ReadCalls: 2, WriteCalls: 4}); d != (IO{ReadCalls: 5, WriteCalls: 5}) {
		t.Fatalf("Sub = %+v", d)
	}
	if _, err := ParseIO([]byte("rchar: 1\n")); !errors.Is(err, ErrFormat) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := ParseIO([]byte("syscr: x\nsyscw: 1\n")); !errors.Is(err, ErrFormat) {
		t.Fatalf("bad number: %v", err)
	}
}

func TestParseAuxvClockTicks(t *testing.T) {
	b := make([]byte, 48)
	binary.LittleEndian.PutUint64(b[0:], 6) // AT_PAGESZ
	binary.LittleEndian.PutUint64(b[8:], 4096)
	binary.LittleEndian.PutUint64(b[16:], atClkTck)
	binary.LittleEndian.PutUint64(b[24:], 250)
	if n, ok := ParseAuxvClockTicks(b); !ok || n != 250 {
		t.Fatalf("got %d %v", n, ok)
	}
	if _, ok := ParseAuxvClockTicks(b[:16]); ok {
		t.Fatal("found AT_CLKTCK where there is none")
	}
}

func TestReadSelf(t *testing.T) {
	pid := os.Getpid()
	if _, err := ReadCPU(pid); err != nil {
		t.Fatal(err)
	}
	if rss, err := ReadRSS(pid); err != nil || rss <= 0 {
		t.Fatalf("rss %d, %v", rss, err)
	}
	if _, err := ReadIO(pid); err != nil {
		t.Fatal(err)
	}
	if ClockTicks() <= 0 {
		t.Fatal("ClockTicks")
	}
	if _, err := ReadCPU(0); !errors.Is(err, ErrBadPID) {
		t.Fatalf("pid 0: %v", err)
	}
}
