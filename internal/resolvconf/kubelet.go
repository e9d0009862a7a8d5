// The kubelet builds every pod's resolv.conf from the file named by its --resolv-conf (the node's
// resolver configuration) when it makes the pod's sandbox. Parse reads such a file with the
// kubelet's own rules (pkg/kubelet/network/dns parseResolvConf, v1.34), which differ from a C
// library's: `domain` lines are ignored, the last `search` line wins, "." and trailing dots are
// dropped from search domains, and an `options` token replaces an earlier one of the same name.

package resolvconf

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxSize is the most of a resolv.conf the kubelet reads (maxResolvConfLength); a longer file
// fails every pod sandbox the kubelet makes from it.
const maxSize = 10 << 20

// Conf is a resolv.conf's nameservers, search domains and options, as the kubelet reads them or
// writes them for a pod.
type Conf struct {
	Nameservers []string
	Searches    []string
	Options     []string // "name" or "name:value"
}

// Parse reads a resolv.conf with the kubelet's rules: nameserver lines accumulate, the last
// search line wins (without "." and without trailing dots), and options accumulate, a later option
// replacing an earlier one of the same name. Options keep the order of first appearance; the
// kubelet's order is a map's, so random, and no resolver cares. A nameserver line without an
// address is an error, as it is for the kubelet, which then cannot make any pod's sandbox.
func Parse(r io.Reader) (*Conf, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("resolv.conf larger than %d bytes", maxSize)
	}
	c := &Conf{Nameservers: []string{}, Searches: []string{}, Options: []string{}}
	var errs []error
	for line := range strings.SplitSeq(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		fields := strings.Fields(trimmed)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				errs = append(errs, errors.New("nameserver list is empty"))
				continue
			}
			c.Nameservers = append(c.Nameservers, fields[1])
		case "search":
			c.Searches = []string{}
			for _, s := range fields[1:] {
				if s != "." {
					c.Searches = append(c.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			c.Options = AppendOptions(c.Options, fields[1:]...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// AppendOptions returns options with each of add replacing the option of the same name (the text
// before the first ':'), or appended: the kubelet's appendOptions, in a fixed order.
func AppendOptions(options []string, add ...string) []string {
	out := make([]string, 0, len(options)+len(add))
	index := make(map[string]int, len(options)+len(add))
	for _, o := range append(options[:len(options):len(options)], add...) {
		name, _, _ := strings.Cut(o, ":")
		if i, ok := index[name]; ok {
			out[i] = o
			continue
		}
		index[name] = len(out)
		out = append(out, o)
	}
	return out
}
