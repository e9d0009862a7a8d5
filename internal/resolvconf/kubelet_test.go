package resolvconf

import (
	"reflect"
	"strings"
	"testing"
)

// TestParse holds the cases of the kubelet's TestParseResolvConf (v1.34): the same inputs give the
// same nameservers, searches and options (options in order of first appearance here, where the
// kubelet's order is random), and the same errors.
func TestParse(t *testing.T) {
	for i, tc := range []struct {
		in                           string
		servers, searches, options   []string
		shouldErr                    bool
		expectedErrContent, whyCheck string
	}{
		// positive
		{in: ""},
		{in: " \n\t\n\t"},
		{in: "#comment\n #comment\n#comment"},
		{in: "#comment\nnameserver 1.2.3.4\nsearch", servers: []string{"1.2.3.4"}},
		{in: " nameserver \t 1.2.3.4 #comment", servers: []string{"1.2.3.4"}},
		{in: "nameserver 1.2.3.4\nnameserver 5.6.7.8", servers: []string{"1.2.3.4", "5.6.7.8"}},
		{in: "search .", whyCheck: "a lone dot is dropped"},
		{in: "search . foo", searches: []string{"foo"}},
		{in: "search foo .  bar", searches: []string{"foo", "bar"}},
		{in: "search foo. Bar", searches: []string{"foo", "Bar"}, whyCheck: "trailing dot trimmed, case kept"},
		{in: "search foo\nsearch bar", searches: []string{"bar"}, whyCheck: "the last search line wins"},
		{in: "search foo foo", searches: []string{"foo", "foo"}, whyCheck: "no deduplication of the node's own list"},
		{in: "domain corp.example\n", whyCheck: "the kubelet ignores domain lines"},
		{in: "search a b # c", searches: []string{"a", "b", "#", "c"}, whyCheck: "no comments after a search line"},
		{in: ";comment\nsearch x", searches: []string{"x"}, whyCheck: "only # starts a comment; ;comment is an unknown keyword"},
		{in: "options ndots:5 attempts:2", options: []string{"ndots:5", "attempts:2"}},
		{in: "options ndots:1 ndots:5 attempts:2", options: []string{"ndots:5", "attempts:2"}},
		{in: "options ndots:1 timeout:3 timeout:1 attempts:3\noptions ndots:5", options: []string{"ndots:5", "timeout:1", "attempts:3"}},
		{in: "nameserver 1.2.3.4\nsearch foo\nnameserver 5.6.7.8\nsearch bar\noptions ndots:5 attempts:4",
			servers: []string{"1.2.3.4", "5.6.7.8"}, searches: []string{"bar"}, options: []string{"ndots:5", "attempts:4"}},
		// negative
		{in: "#comment\nnameserver", shouldErr: true, expectedErrContent: "nameserver list is empty"},
		{in: "nameserver\nsearch", shouldErr: true, expectedErrContent: "nameserver list is empty"},
		{in: strings.Repeat("#", maxSize+1), shouldErr: true, expectedErrContent: "larger than"},
	} {
		got, err := Parse(strings.NewReader(tc.in))
		if tc.shouldErr {
			if err == nil || !strings.Contains(err.Error(), tc.expectedErrContent) {
				t.Errorf("Test %d: Expected an error with %q, got %v", i, tc.expectedErrContent, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d: Expected no error, got %v", i, err)
			continue
		}
		want := &Conf{Nameservers: orEmpty(tc.servers), Searches: orEmpty(tc.searches), Options: orEmpty(tc.options)}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Test %d (%s): Expected %+v, got %+v", i, tc.whyCheck, want, got)
		}
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestAppendOptions(t *testing.T) {
	base := []string{"ndots:5", "debug"}
	got := AppendOptions(base, "attempts:2", "ndots:2", "debug")
	if want := []string{"ndots:2", "debug", "attempts:2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Expected %v, got %v", want, got)
	}
	if want := []string{"ndots:5", "debug"}; !reflect.DeepEqual(base, want) {
		t.Errorf("Expected the base untouched, %v, got %v", want, base)
	}
}
