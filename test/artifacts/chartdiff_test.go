package artifacts

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// helmLabels are the labels Helm's conventions add to the objects of a chart: the only labels
// the chart's objects may have beyond those of the plain manifests.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}

// imagePlaceholder stands for a container's image in a normalized object: the chart's is its
// appVersion by default, deploy/'s the :dev tag of `make image`; the tests check each apart.
const imagePlaceholder = "IMAGE"

// normalized returns o as indented JSON (keys sorted), without helmLabels in its metadata and its
// pod template's, and with imagePlaceholder for every container's image.
func normalized(t *testing.T, o runtime.Object) string {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	dropHelmLabels(m["metadata"])
	if spec, ok := m["spec"].(map[string]any); ok {
		if tpl, ok := spec["template"].(map[string]any); ok {
			dropHelmLabels(tpl["metadata"])
			if ps, ok := tpl["spec"].(map[string]any); ok {
				for _, key := range []string{"containers", "initContainers"} {
					cs, _ := ps[key].([]any)
					for _, c := range cs {
						if c, ok := c.(map[string]any); ok {
							c["image"] = imagePlaceholder
						}
					}
				}
			}
		}
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func dropHelmLabels(meta any) {
	m, ok := meta.(map[string]any)
	if !ok {
		return
	}
	l, ok := m["labels"].(map[string]any)
	if !ok {
		return
	}
	for _, k := range helmLabels {
		delete(l, k)
	}
	if len(l) == 0 {
		delete(m, "labels")
	}
}

// compareObjects fails t for every difference between the objects of chart and those of plain,
// matched by kind, namespace and name: an object only one side has, or one whose normalized form
// differs (shown as a line diff, - plain, + chart).
func compareObjects(t *testing.T, chart, plain *bundle) {
	t.Helper()
	index := func(b *bundle) map[string]runtime.Object {
		m := map[string]runtime.Object{}
		for _, o := range b.objs {
			k := objectKey(o)
			if _, dup := m[k]; dup {
				t.Errorf("%s: %s twice", b.name, k)
			}
			m[k] = o
		}
		return m
	}
	c, p := index(chart), index(plain)
	var keys []string
	for k := range p {
		keys = append(keys, k)
	}
	for k := range c {
		if _, ok := p[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch co, po := c[k], p[k]; {
		case co == nil:
			t.Errorf("%s is in %s but not in %s", k, plain.name, chart.name)
		case po == nil:
			t.Errorf("%s is in %s but not in %s", k, chart.name, plain.name)
		default:
			if a, b := normalized(t, po), normalized(t, co); a != b {
				t.Errorf("%s differs between %s (-) and %s (+):\n%s", k, plain.name, chart.name, lineDiff(a, b))
			}
		}
	}
}

// lineDiff returns the lines that differ between a and b, - for a's and + for b's, with one line
// of context, from a longest common subsequence of their lines. Long lines are cut.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j]: the length of the longest common subsequence of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', x[i]})
			i++
		default:
			lines = append(lines, line{'+', y[j]})
			j++
		}
	}
	var out strings.Builder
	shown := -1
	for n, l := range lines {
		if l.op == ' ' {
			continue
		}
		for c := max(n-1, shown+1); c <= min(n+1, len(lines)-1); c++ {
			if c > shown+1 && shown >= 0 {
				out.WriteString("  ...\n")
			}
			text := lines[c].text
			if len(text) > 160 {
				text = text[:160] + "..."
			}
			fmt.Fprintf(&out, "%c %s\n", lines[c].op, text)
			shown = c
		}
	}
	return out.String()
}
