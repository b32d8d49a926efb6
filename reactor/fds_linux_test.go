package reactor

import "os"

// countFDs returns the number of open descriptors of this process, or -1 if /proc is missing.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// openFDs names the open descriptors and what they refer to, for a leak report.
func openFDs() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var names []string
	for _, e := range ents {
		t, _ := os.Readlink("/proc/self/fd/" + e.Name())
		names = append(names, e.Name()+"->"+t)
	}
	return names
}
