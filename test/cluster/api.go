package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/raceguard/raceguard/test/lab"
)

// fieldManager is the manager name of what the cluster applies, as kubectl apply --server-side
// uses "kubectl".
const fieldManager = "raceguard-lab"

// Apply applies the YAML documents of manifests to the API server, as `kubectl apply
// --server-side` does, into namespace ns where a namespaced object names none.
func (c *Cluster) Apply(ctx context.Context, ns string, manifests []byte) error {
	d := yamlutil.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := d.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s: %w", gvk, err)
		}
		r := c.Dynamic.Resource(m.Resource)
		body, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		force := true
		opts := metav1.PatchOptions{FieldManager: fieldManager, Force: &force}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(ns)
			}
			_, err = r.Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
		} else {
			_, err = r.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
		}
		if err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
}

// ApplyFiles applies the repository's files (paths from its root).
func (c *Cluster) ApplyFiles(ctx context.Context, ns string, files ...string) error {
	for _, f := range files {
		path, err := lab.RepoPath(f)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := c.Apply(ctx, ns, b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// EnsureNamespace makes namespace name, if it is not there.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// ServiceIP returns the ClusterIP of Service ns/name.
func (c *Cluster) ServiceIP(ctx context.Context, ns, name string) (string, error) {
	s, err := c.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return s.Spec.ClusterIP, nil
}

// ConfigMapData returns key of ConfigMap ns/name.
func (c *Cluster) ConfigMapData(ctx context.Context, ns, name, key string) (string, error) {
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	v, ok := cm.Data[key]
	if !ok {
		return "", fmt.Errorf("configmap %s/%s has no %s", ns, name, key)
	}
	return v, nil
}

// writeJSON writes v as JSON into the cluster's folder and returns the file's path.
func (c *Cluster) writeJSON(name string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, name)
	return path, os.WriteFile(path, b, 0o644)
}

// WaitEndpoints waits, at most timeout, until the EndpointSlices of Service ns/name list exactly
// want as ready addresses (in any order), as the endpointslice controller writes them.
func (c *Cluster) WaitEndpoints(ctx context.Context, ns, name string, timeout time.Duration, want ...string) error {
	deadline := time.Now().Add(timeout)
	var got []string
	for {
		var err error
		if got, err = c.ReadyEndpoints(ctx, ns, name); err == nil && sameSet(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s/%s: endpoints %v after %s, want %v (%v)", ns, name, got, timeout, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ReadyEndpoints returns the ready addresses of Service ns/name's EndpointSlices.
func (c *Cluster) ReadyEndpoints(ctx context.Context, ns, name string) ([]string, error) {
	slices, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				out = append(out, e.Addresses...)
			}
		}
	}
	return out, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
