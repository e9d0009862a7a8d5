package collapse

import (
	"reflect"
	"testing"

	"github.com/coredns/caddy"
)

func TestSetup(t *testing.T) {
	tests := []struct {
		input      string
		zones      []string
		maxKeys    int
		maxWaiters int
	}{
		{`collapse`, []string{"example.org."}, defaultMaxKeys, defaultMaxWaiters},
		{"collapse {\n}", []string{"example.org."}, defaultMaxKeys, defaultMaxWaiters},
		{`collapse Example.NET 10.0.0.0/24`, []string{"example.net.", "0.0.10.in-addr.arpa."}, defaultMaxKeys, defaultMaxWaiters},
		{"collapse . {\n max_keys 5\n max_waiters 7\n}", []string{"."}, 5, 7},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"example.org:53"}
		co, err := parse(c)
		if err != nil {
			t.Fatalf("Test %d: Expected no error, got %v", i, err)
		}
		if !reflect.DeepEqual(co.Zones, tc.zones) || co.maxKeys != tc.maxKeys || co.group.maxWaiters != tc.maxWaiters {
			t.Errorf("Test %d: Expected zones %v, max_keys %d, max_waiters %d; got %v, %d, %d",
				i, tc.zones, tc.maxKeys, tc.maxWaiters, co.Zones, co.maxKeys, co.group.maxWaiters)
		}
	}
}

func TestSetupErrors(t *testing.T) {
	const prefix = "plugin/collapse: "
	tests := []struct {
		input string
		want  string // the whole message a user sees
	}{
		{"collapse\ncollapse", prefix + "this plugin can only be used once per Server Block"},
		{"collapse bad..zone", prefix + `Testfile:1 - Error during parsing: collapse: invalid zone "bad..zone"`},
		{"collapse {\n max_inflight 10\n}", prefix + "Testfile:2 - Error during parsing: unknown property 'max_inflight'"},
		{"collapse {\n max_keys\n}", prefix + "Testfile:2 - Error during parsing: max_keys: missing value"},
		{"collapse {\n max_keys 0\n}", prefix + `Testfile:2 - Error during parsing: max_keys: invalid value "0": want an integer from 1 to 1048576`},
		{"collapse {\n max_keys ten\n}", prefix + `Testfile:2 - Error during parsing: max_keys: invalid value "ten": want an integer from 1 to 1048576`},
		{"collapse {\n max_keys 1 2\n}", prefix + `Testfile:2 - Error during parsing: max_keys: want 1 value(s), got 2: "1 2"`},
		{"collapse {\n max_waiters -1\n}", prefix + `Testfile:2 - Error during parsing: max_waiters: invalid value "-1": want an integer from 1 to 65536`},
		{"collapse {\n max_waiters 5\n max_waiters 6\n}", prefix + "Testfile:3 - Error during parsing: max_waiters: given more than once"},
	}
	for i, tc := range tests {
		err := setup(caddy.NewTestController("dns", tc.input))
		if err == nil {
			t.Errorf("Test %d: Expected error %q, got none", i, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Test %d: Expected error\n\t%q\ngot\n\t%q", i, tc.want, err.Error())
		}
	}
}
