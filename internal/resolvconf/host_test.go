package resolvconf

import "testing"

func TestHost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when refused
	}{
		{".", "."},
		{"Example.ORG", "example.org."},
		{"svc.cluster.local.", "svc.cluster.local."},
		{"_tcp.a-b.example", "_tcp.a-b.example."},
		{"a..b", ""},
		{"lab_internal!", ""},
		{"exa mple.org", ""},
		{"c\\.default.svc", ""},
		{string(make([]byte, 64)) + ".org", ""},
	} {
		got, ok := Host(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("Host(%q): Expected %q, got %q, %v", tc.in, tc.want, got, ok)
		}
	}
}
