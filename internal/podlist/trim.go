package podlist

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// trim is the transform the watch applies to every pod it keeps, even for a moment (client-go's
// watch-list sync holds the whole initial set before handing it over): a new Pod with only what
// its search list and its address depend on. Env values are dropped; a LOCALDOMAIN or
// RES_OPTIONS variable of any container is kept by name only, in one container.
func trim(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: the store reads its key
	}
	t := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         p.Namespace,
			Name:              p.Name,
			ResourceVersion:   p.ResourceVersion,
			DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{
			HostNetwork:       p.Spec.HostNetwork,
			DNSPolicy:         p.Spec.DNSPolicy,
			Hostname:          p.Spec.Hostname,
			Subdomain:         p.Spec.Subdomain,
			SetHostnameAsFQDN: p.Spec.SetHostnameAsFQDN,
			HostnameOverride:  p.Spec.HostnameOverride,
			OS:                p.Spec.OS,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
	if dc := p.Spec.DNSConfig; dc != nil {
		t.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: dc.Searches, Options: dc.Options}
	}
	if facts(p).envOverride {
		t.Spec.Containers = []corev1.Container{{Env: []corev1.EnvVar{{Name: "LOCALDOMAIN"}}}}
	}
	return t, nil
}
