package kubeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// podStore is the API's pods: a current set and the log of every change since the start, served
// to lists and watches through field selectors as the real API server serves them.
type podStore struct {
	mu          sync.Mutex
	rv          int64                  // the resource version of the last change
	objs        map[string]*corev1.Pod // by namespace/name
	log         []podEvent             // every change, in order
	changed     chan struct{}          // closed and replaced at every change
	down        bool                   // every request fails with 503
	expired     int                    // bumped by Expire: watches opened before end with 410
	floor       int64                  // a watch from before this resource version gets 410
	noWatchList bool                   // a watch with sendInitialEvents is refused
	selectors   []string               // the field selector of every pod request
}

// podEvent is one change: old is nil for an addition, new nil for a deletion.
type podEvent struct {
	rv       int64
	old, new *corev1.Pod
}

func newPodStore(pods []*corev1.Pod) *podStore {
	s := &podStore{rv: 1, objs: map[string]*corev1.Pod{}, changed: make(chan struct{})}
	for _, p := range pods {
		p = s.stamp(p)
		s.objs[p.Namespace+"/"+p.Name] = p
	}
	return s
}

// stamp returns a copy of p at the current resource version.
func (s *podStore) stamp(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	p.ResourceVersion = strconv.FormatInt(s.rv, 10)
	return p
}

// notify wakes every watch. s.mu is held.
func (s *podStore) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *podStore) put(p *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv++
	k := p.Namespace + "/" + p.Name
	p = s.stamp(p)
	s.log = append(s.log, podEvent{rv: s.rv, old: s.objs[k], new: p})
	s.objs[k] = p
	s.notify()
}

func (s *podStore) delete(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := namespace + "/" + name
	old := s.objs[k]
	if old == nil {
		return
	}
	s.rv++
	s.log = append(s.log, podEvent{rv: s.rv, old: old})
	delete(s.objs, k)
	s.notify()
}

// selectable is the pod's fields a field selector may name, as the API server's
// ToSelectableFields gives them.
func selectable(p *corev1.Pod) fields.Set {
	ip := ""
	if len(p.Status.PodIPs) > 0 {
		ip = p.Status.PodIPs[0].IP
	}
	return fields.Set{
		"metadata.name":            p.Name,
		"metadata.namespace":       p.Namespace,
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             ip,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

// status writes an API error.
func status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(statusObject(code, reason, msg))
}

func statusObject(code int, reason metav1.StatusReason, msg string) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
}

// serve answers a list or a watch of pods.
func (s *podStore) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err == nil {
		for _, req := range sel.Requirements() {
			if _, ok := selectable(&corev1.Pod{})[req.Field]; !ok {
				err = fmt.Errorf("field label not supported: %s", req.Field)
			}
		}
	}
	if err != nil {
		status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	s.selectors = append(s.selectors, q.Get("fieldSelector"))
	down, noWatchList, expired := s.down, s.noWatchList, s.expired
	s.mu.Unlock()
	if down {
		status(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "the API server is down")
		return
	}
	matches := func(p *corev1.Pod) bool { return p != nil && sel.Matches(selectable(p)) }

	if q.Get("watch") != "true" {
		s.mu.Lock()
		items := make([]runtime.RawExtension, 0, len(s.objs))
		for _, p := range s.objs {
			if matches(p) {
				items = append(items, runtime.RawExtension{Object: p})
			}
		}
		rv := s.rv
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&metav1.List{
			TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatInt(rv, 10)}, Items: items,
		})
		return
	}

	initial := q.Get("sendInitialEvents") == "true"
	if initial && noWatchList {
		status(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	send := func(typ string, o runtime.Object) {
		enc.Encode(struct {
			Type   string         `json:"type"`
			Object runtime.Object `json:"object"`
		}{typ, o})
	}
	var from int64
	s.mu.Lock()
	if initial {
		for _, p := range s.objs {
			if matches(p) {
				send("ADDED", p)
			}
		}
		from = s.rv
		send("BOOKMARK", &corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.FormatInt(from, 10), Annotations: map[string]string{
				metav1.InitialEventsAnnotationKey: "true",
			}},
		})
	} else {
		from, _ = strconv.ParseInt(q.Get("resourceVersion"), 10, 64)
	}
	s.mu.Unlock()
	w.(http.Flusher).Flush()

	for {
		s.mu.Lock()
		if s.down {
			s.mu.Unlock()
			return
		}
		if s.expired != expired || from < s.floor {
			s.mu.Unlock()
			send("ERROR", statusObject(http.StatusGone, metav1.StatusReasonExpired, "too old resource version"))
			return
		}
		var evs []podEvent
		for i := len(s.log) - 1; i >= 0 && s.log[i].rv > from; i-- {
			evs = append(evs, s.log[i])
		}
		changed := s.changed
		s.mu.Unlock()
		for i := len(evs) - 1; i >= 0; i-- {
			e := evs[i]
			was, is := matches(e.old), matches(e.new)
			switch {
			case is && !was:
				send("ADDED", e.new)
			case is && was:
				send("MODIFIED", e.new)
			case was:
				// Leaving the selection, or deleted: the last content, at the event's version.
				gone := e.old.DeepCopy()
				gone.ResourceVersion = strconv.FormatInt(e.rv, 10)
				send("DELETED", gone)
			}
			from = e.rv
		}
		w.(http.Flusher).Flush()
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// PutPod adds p, or replaces the pod of its namespace and name, and tells every watch.
func (a *API) PutPod(p *corev1.Pod) { a.pods.put(p) }

// DeletePod deletes a pod and tells every watch.
func (a *API) DeletePod(namespace, name string) { a.pods.delete(namespace, name) }

// SetDown makes every pod request fail with 503 and ends every pod watch, or ends that.
func (a *API) SetDown(down bool) {
	a.pods.mu.Lock()
	defer a.pods.mu.Unlock()
	a.pods.down = down
	a.pods.notify()
}

// Expire ends every open pod watch with a 410 Expired error, and refuses a watch from any
// resource version before now the same way: only a new list resumes.
func (a *API) Expire() {
	a.pods.mu.Lock()
	defer a.pods.mu.Unlock()
	a.pods.expired++
	a.pods.floor = a.pods.rv
	a.pods.notify()
}

// RefuseWatchList makes the API refuse to stream the initial list in a watch
// (sendInitialEvents), as API servers without the WatchList feature do: clients list instead.
func (a *API) RefuseWatchList() {
	a.pods.mu.Lock()
	defer a.pods.mu.Unlock()
	a.pods.noWatchList = true
}

// PodSelectors returns the field selector of every pod list and watch so far, in order.
func (a *API) PodSelectors() []string {
	a.pods.mu.Lock()
	defer a.pods.mu.Unlock()
	return append([]string(nil), a.pods.selectors...)
}
