package testenv

import (
	"bufio"
	"os"
	"strings"
)

// CorefilesFromReadme returns the ~~~ corefile (or ``` corefile) blocks of a README, which the
// README tests start: documentation that cannot drift from what the plugins accept.
func CorefilesFromReadme(readme string) ([]string, error) {
	f, err := os.Open(readme)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var blocks []string
	var cur strings.Builder
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch {
		case line == "~~~ corefile" || line == "``` corefile":
			in = true
		case in && (line == "~~~" || line == "```"):
			blocks = append(blocks, cur.String())
			cur.Reset()
			in = false
		case in:
			cur.WriteString(line + "\n")
		}
	}
	return blocks, s.Err()
}
