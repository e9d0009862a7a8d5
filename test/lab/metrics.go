package lab

import (
	"bufio"
	"strconv"
	"strings"
)

// Sample is one line of a Prometheus text exposition.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed Prometheus text exposition.
type Metrics []Sample

// ParseMetrics parses the text exposition format (comments and blank lines are skipped).
func ParseMetrics(text string) Metrics {
	var out Metrics
	s := bufio.NewScanner(strings.NewReader(text))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		smp := Sample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			smp.Name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := parseLabels(rest[1:], smp.Labels)
			rest = rest[1+end:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		smp.Value = v
		out = append(out, smp)
	}
	return out
}

// parseLabels reads `a="x",b="y"}` into into and returns the index just past the closing brace.
func parseLabels(s string, into map[string]string) int {
	i := 0
	for i < len(s) && s[i] != '}' {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return len(s)
		}
		key := strings.TrimSpace(strings.TrimLeft(s[i:i+eq], ","))
		i += eq + 2 // past ="
		var val strings.Builder
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
			} else {
				val.WriteByte(s[i])
			}
			i++
		}
		into[key] = val.String()
		i++ // past the closing quote
		if i < len(s) && s[i] == ',' {
			i++
		}
	}
	return i + 1
}

// Sum returns the sum of every sample of name whose labels include labels.
func (ms Metrics) Sum(name string, labels map[string]string) float64 {
	var total float64
next:
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		for k, v := range labels {
			if m.Labels[k] != v {
				continue next
			}
		}
		total += m.Value
	}
	return total
}

// Has reports whether any sample of name exists.
func (ms Metrics) Has(name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}
