package dnsperf

import (
	"os"
	"strings"
)

// WriteQueries writes lines ("name TYPE" each) to path as a dnsperf query file (-d).
func WriteQueries(path string, lines []string) error {
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
