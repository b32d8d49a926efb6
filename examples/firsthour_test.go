package examples_test

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// countLines returns a Go file's lines, and its code lines: neither blank nor only a comment.
func countLines(t *testing.T, path string) (total, code int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		total++
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "//") {
			code++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total, code
}

// TestFirstHourLineCounts checks the before/after table in docs/EMBEDDING.md against the
// programs (examples/X/main.go and examples/before/X/main.go), so the numbers there are the
// programs' and the "after" versions stay shorter. Run it with -v to print the counts:
//
//	go test -run TestFirstHourLineCounts -v ./examples/
func TestFirstHourLineCounts(t *testing.T) {
	doc, err := os.ReadFile("../docs/EMBEDDING.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kv", "jsonapi", "jsonapi-mux"} {
		bt, bc := countLines(t, "before/"+name+"/main.go")
		at, ac := countLines(t, name+"/main.go")
		t.Logf("%-12s before %d lines / %d code, after %d lines / %d code", name, bt, bc, at, ac)
		if ac >= bc {
			t.Errorf("%s: the version with the helpers has %d code lines, the one without %d", name, ac, bc)
		}
		row := regexp.MustCompile("(?m)^\\|[^|\\n]*\\(`" + regexp.QuoteMeta(name) + "`\\)[^|\\n]*\\|\\s*(\\d+) / (\\d+)\\s*\\|\\s*(\\d+) / (\\d+)\\s*\\|")
		m := row.FindStringSubmatch(string(doc))
		if m == nil {
			t.Errorf("docs/EMBEDDING.md has no row for (`%s`) with \"lines / code\" before and after", name)
			continue
		}
		if got, want := strings.Join(m[1:5], " "), fmt.Sprintf("%d %d %d %d", bt, bc, at, ac); got != want {
			t.Errorf("docs/EMBEDDING.md says %s: %s (before lines, code; after lines, code); the files have %s", name, got, want)
		}
	}
}
