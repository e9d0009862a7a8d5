package podlist

import (
	"reflect"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/internal/resolvconf"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolverList(t *testing.T) {
	cluster := []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	for _, tc := range []struct {
		name     string
		searches []string
		options  []string
		facts    podFacts
		want     *List // nil for Ambiguous
	}{
		// positive
		{name: "kubelet default", searches: cluster, options: []string{"ndots:5"},
			want: &List{Search: []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local."}, NDots: 5}},
		{name: "no ndots option is 1", searches: []string{"Corp.Example", "corp.example."},
			want: &List{Search: []string{"corp.example.", "corp.example."}, NDots: 1}},
		{name: "ndots above 15 is 15", options: []string{"ndots:40"}, want: &List{Search: []string{}, NDots: 15}},
		{name: "ndots with a tail both libraries ignore", options: []string{"ndots:2x"}, want: &List{Search: []string{}, NDots: 2}},
		{name: "ndots without value is ignored by both", options: []string{"ndots", "edns0"}, want: &List{Search: []string{}, NDots: 1}},
		{name: "no search list, hostname without a dot", want: &List{Search: []string{}, NDots: 1}},
		{name: "six domains", searches: append(append([]string{}, cluster...), "a.example", "b.example", "c.example"), options: []string{"ndots:5"},
			want: &List{Search: []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "a.example.", "b.example.", "c.example."}, NDots: 5}},
		{name: "a search line of 255 bytes", searches: []string{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 55)},
			want: &List{Search: []string{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 55) + "."}, NDots: 1}},
		{name: "a long options line with ndots 1", options: []string{"ndots:1", strings.Repeat("x", 250)}, want: &List{Search: []string{}, NDots: 1}},
		// negative: glibc and musl, or two glibc versions, read it differently
		{name: "LOCALDOMAIN or RES_OPTIONS set", searches: cluster, options: []string{"ndots:5"}, facts: podFacts{envOverride: true}},
		{name: "a Windows pod", searches: cluster, options: []string{"ndots:5"}, facts: podFacts{windows: true}},
		{name: "no search list and a dotted hostname", facts: podFacts{dottedHostname: true}},
		{name: "seven domains (glibc before 2.26 reads six)", searches: append(append([]string{}, cluster...), "a.example", "b.example", "c.example", "d.example")},
		{name: "a search line of 256 bytes (musl skips it)", searches: []string{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 56)}},
		{name: "the root as a search domain", searches: []string{"."}},
		{name: "a leading dot", searches: []string{".corp.example"}},
		{name: "an empty label", searches: []string{"corp..example"}},
		{name: "ndots not a number (glibc 0, musl 1)", options: []string{"ndots:abc"}},
		{name: "ndots with a sign", options: []string{"ndots:+3"}},
		{name: "ndots too long for glibc's int", options: []string{"ndots:12345678901"}},
		{name: "another option with ndots: in it", options: []string{"ndots:2", "x-ndots:7"}},
		{name: "a long options line with ndots 2", options: []string{"ndots:2", strings.Repeat("x", 250)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, st := resolverList(resolvconf.Conf{Searches: tc.searches, Options: tc.options}, tc.facts)
			if tc.want == nil {
				if st != Ambiguous || l != nil {
					t.Errorf("Expected Ambiguous, got %v %+v", st, l)
				}
				return
			}
			if st != Known || l == nil || !reflect.DeepEqual(l.Search, tc.want.Search) || l.NDots != tc.want.NDots {
				t.Errorf("Expected Known %+v, got %v %+v", tc.want, st, l)
			}
		})
	}
}

func TestFacts(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want podFacts
	}{
		{name: "plain", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-0"}}},
		{name: "a dotted pod name", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api.v2"}}, want: podFacts{dottedHostname: true}},
		{name: "spec.hostname replaces the name", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api.v2"}, Spec: corev1.PodSpec{Hostname: "api"}}},
		{name: "a dot past 63 characters is cut off", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 63) + ".b"}}},
		{name: "a dot just before the cut is trimmed", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 62) + ".b"}}},
		{name: "setHostnameAsFQDN with a subdomain", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0"},
			Spec: corev1.PodSpec{Subdomain: "db", SetHostnameAsFQDN: ptr(true)}}, want: podFacts{dottedHostname: true}},
		{name: "setHostnameAsFQDN without one", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0"},
			Spec: corev1.PodSpec{SetHostnameAsFQDN: ptr(true)}}},
		{name: "hostnameOverride with a dot", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0"},
			Spec: corev1.PodSpec{HostnameOverride: ptr("db.example")}}, want: podFacts{dottedHostname: true}},
		{name: "RES_OPTIONS in an init container", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "RES_OPTIONS", Value: "ndots:1"}}}}}},
			want: podFacts{envOverride: true}},
		{name: "LOCALDOMAIN in a container", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "HOME"}, {Name: "LOCALDOMAIN", Value: "x"}}}}}},
			want: podFacts{envOverride: true}},
		{name: "Windows", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Windows}}},
			want: podFacts{windows: true}},
	} {
		if got := facts(&tc.pod); got != tc.want {
			t.Errorf("%s: Expected %+v, got %+v", tc.name, tc.want, got)
		}
		// trim keeps every fact.
		trimmed, _ := trim(&tc.pod)
		if got := facts(trimmed.(*corev1.Pod)); got != tc.want {
			t.Errorf("%s: Expected %+v after trim, got %+v", tc.name, tc.want, got)
		}
	}
}
