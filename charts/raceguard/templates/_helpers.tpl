{{/*
The chart's name.
*/}}
{{- define "raceguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, Helm's convention: the release name if it contains the chart's name,
else <release>-<chart>. Truncated so that <fullname>-node-local fits in 63 characters.
*/}}
{{- define "raceguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := include "raceguard.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The name of the node-local objects: DaemonSet, ConfigMap, metrics Service, ServiceMonitor. It is
also their k8s-app label, the DaemonSet's selector, and the Prometheus job of the ServiceMonitor.
*/}}
{{- define "raceguard.nodeLocalName" -}}
{{- printf "%s-node-local" (include "raceguard.fullname" .) }}
{{- end }}

{{- define "raceguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "raceguard.nodeLocalName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Labels of every object. deploy/ and monitoring/kube-prometheus have the same but the four Helm
adds (chart, instance, version, managed-by).
*/}}
{{- define "raceguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "raceguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of the node-local objects.
*/}}
{{- define "raceguard.nodeLocalLabels" -}}
{{ include "raceguard.labels" . }}
app.kubernetes.io/component: node-local-dns
{{- end }}

{{/*
The image, with the chart's appVersion for a tag by default.
*/}}
{{- define "raceguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The environment variable in which the kubelet gives a pod the ClusterIP of a Service of its
namespace (service links): kube-dns-upstream -> KUBE_DNS_UPSTREAM_SERVICE_HOST.
*/}}
{{- define "raceguard.serviceHostVar" -}}
{{- printf "%s_SERVICE_HOST" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
The addresses the server binds: the link-local one and, in transparent mode, the kube-dns
ClusterIP.
*/}}
{{- define "raceguard.bind" -}}
{{- .Values.localIP }}
{{- if .Values.transparent }}
{{- if .Values.kubeDNS.clusterIP }} {{ .Values.kubeDNS.clusterIP }}
{{- else }} {{ printf "{$%s}" (include "raceguard.serviceHostVar" .Values.kubeDNS.serviceName) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A Corefile option's value as written: on/off for a boolean, an integer without an exponent for
a number (values are float64 to templates), anything else as it is.
*/}}
{{- define "raceguard.optionValue" -}}
{{- if kindIs "bool" . }}{{ ternary "on" "off" . }}
{{- else if kindIs "float64" . }}{{ int64 . }}
{{- else }}{{ . }}
{{- end }}
{{- end }}

{{/*
A Corefile block: the directive alone, or with an indented block of the options that are set.
The argument is a list: the directive's line, the indentation of that line in the template, then pairs of an
option's name and value; an unset (nil or empty) value leaves its option out.
*/}}
{{- define "raceguard.block" -}}
{{- $head := index . 0 }}
{{- $indent := index . 1 }}
{{- $lines := list }}
{{- range $opt := slice . 2 }}
{{- $v := index $opt 1 }}
{{- if not (or (kindIs "invalid" $v) (eq (toString $v) "")) }}
{{- $lines = append $lines (printf "%s %s" (index $opt 0) (include "raceguard.optionValue" $v)) }}
{{- end }}
{{- end }}
{{- $head }}
{{- if $lines }} {
{{- range $lines }}
{{ $indent }}    {{ . }}
{{- end }}
{{ $indent }}}
{{- end }}
{{- end }}

{{/*
The chart must be installed in kube-dns's namespace: the Corefile reads the Services' addresses
from the environment that the kubelet gives the pods of that namespace only.
*/}}
{{- define "raceguard.checkNamespace" -}}
{{- if ne .Release.Namespace .Values.kubeDNS.namespace }}
{{- fail (printf "raceguard: install the chart into %s, the namespace of the kube-dns Service and pods (helm install -n %s), or set kubeDNS.namespace to theirs: the node-local servers read the Services' addresses from the environment the kubelet gives pods of that namespace, and the upstream Service selects the kube-dns pods there (the release's namespace is %s)" .Values.kubeDNS.namespace .Values.kubeDNS.namespace .Release.Namespace) }}
{{- end }}
{{- end }}

{{/*
The node-local server's own link-local address: observeIP in observe-only mode, localIP otherwise.
The health and ready plugins listen there, where the kubelet probes them.
*/}}
{{- define "raceguard.localIP" -}}
{{- if .Values.observe }}{{ .Values.observeIP }}{{ else }}{{ .Values.localIP }}{{ end }}
{{- end }}

{{/*
The ConfigMap of the Corefile. Observe-only mode has its own, so that switching modes rolls the
DaemonSet instead of reloading the running pods' Corefile under them.
*/}}
{{- define "raceguard.configMapName" -}}
{{- include "raceguard.nodeLocalName" . }}{{ if .Values.observe }}-observe{{ end }}
{{- end }}

{{/*
The upstream probe's name: nodelocal.probe, or kubernetes.default.svc.<cluster domain> where the
first cluster domain is not nodelocal's default, cluster.local; empty leaves the option out.
*/}}
{{- define "raceguard.probe" -}}
{{- $domain := (splitList " " (toString .Values.raceguard.clusterDomain) | first) | trimSuffix "." }}
{{- if .Values.nodelocal.probe }}{{ .Values.nodelocal.probe }}
{{- else if and $domain (ne $domain "cluster.local") (ne $domain "<nil>") }}kubernetes.default.svc.{{ $domain }}
{{- end }}
{{- end }}

{{/*
The raceguard block of the Corefile, indented for a server block.
*/}}
{{- define "raceguard.raceguardBlock" -}}
{{- with .Values.raceguard }}
{{- include "raceguard.block" (list "raceguard" "        "
      (list "search" (include "raceguard.search" $))
      (list "cluster_domain" .clusterDomain)
      (list "node_search" (include "raceguard.nodeSearch" $))
      (list "node_local" .nodeLocal)
      (list "parallel_walk" .parallelWalk)
      (list "walk_deadline" .walkDeadline)
      (list "walk_budget" .walkBudget)
      (list "max_walks" .maxWalks)
      (list "sibling_prefetch" .siblingPrefetch)
      (list "conntrack" .conntrack)
      (list "interval" .interval)
      (list "window" .window)
      (list "fingerprints" .fingerprints)
      (list "node" .node)) }}
{{- end }}
{{- end }}

{{/*
A zone's forward line: kube-dns (the upstream Service's address from the environment), node (the
node's resolv.conf) or its servers, with force_tcp. To kube-dns no pooled socket lives more than
2 s, within kube-dns's lameduck (deploy/node-local/configmap.yaml says why).
*/}}
{{- define "raceguard.forward" -}}
{{- $root := index . 0 }}
{{- $z := index . 1 }}
{{- $to := "" }}
{{- if kindIs "slice" $z.forward }}{{ $to = join " " $z.forward }}
{{- else if eq $z.forward "node" }}{{ $to = "/etc/resolv.conf" }}
{{- else }}{{ $to = printf "{$%s}" (include "raceguard.serviceHostVar" $root.Values.upstreamService.name) }}
{{- end }}
{{- $kubeDNS := and (kindIs "string" $z.forward) (eq $z.forward "kube-dns") }}
{{- if or $z.forceTCP $kubeDNS }}forward . {{ $to }} {
        {{- if $kubeDNS }}
            expire 2s
            max_age 2s
        {{- end }}
        {{- if $z.forceTCP }}
            force_tcp
        {{- end }}
        }
{{- else }}forward . {{ $to }}
{{- end }}
{{- end }}

{{/*
The zones must make sense: distinct, the first (the block with nodelocal, raceguard and collapse)
to kube-dns.
*/}}
{{- define "raceguard.checkZones" -}}
{{- if not (or .Values.observe .Values.corefile) }}
{{- $first := first .Values.zones }}
{{- if not (and (kindIs "string" $first.forward) (eq $first.forward "kube-dns")) }}
{{- fail (printf "raceguard: zones: the first zone, %s, must forward to kube-dns: its block carries the node set-up, raceguard and collapse, and probes kube-dns (give it \"forward: kube-dns\", or put a kube-dns zone first)" $first.zone) }}
{{- end }}
{{- $seen := dict }}
{{- range .Values.zones }}
{{- if hasKey $seen .zone }}
{{- fail (printf "raceguard: zones: %s is given twice" .zone) }}
{{- end }}
{{- $_ := set $seen .zone true }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Whether the pod watch runs (raceguard's search pods): "true", or empty. With a Corefile of your
own, podWatch.enabled alone says it; otherwise the search the Corefile is rendered with.
*/}}
{{- define "raceguard.podWatch" -}}
{{- if .Values.corefile }}{{ if .Values.podWatch.enabled }}true{{ end }}
{{- else if eq (include "raceguard.search" .) "pods" }}true
{{- end }}
{{- end }}

{{/*
The raceguard block's search: raceguard.search where set; else pods with the pod watch (not in
observe-only mode, which takes no pod's traffic), infer without.
*/}}
{{- define "raceguard.search" -}}
{{- $s := .Values.raceguard.search }}
{{- if not (or (kindIs "invalid" $s) (eq (toString $s) "")) }}{{ $s }}
{{- else if and .Values.podWatch.enabled (not .Values.observe) }}pods
{{- else }}infer
{{- end }}
{{- end }}

{{/*
Where the node's resolv.conf as the kubelet reads it (kubeletResolvConf.path) is mounted: the
file, or its directory with kubeletResolvConf.mountDirectory, under /host. Observe-only mode
mounts nothing: it completes nothing for pods.
*/}}
{{- define "raceguard.kubeletResolvConfHostPath" -}}
{{- if .Values.kubeletResolvConf.mountDirectory }}{{ dir .Values.kubeletResolvConf.path }}
{{- else }}{{ .Values.kubeletResolvConf.path }}
{{- end }}
{{- end }}

{{/*
The raceguard block's node_search: raceguard.nodeSearch where set; else the kubelet's resolv.conf
where it is mounted, or the pod's own copy of the node's (dnsPolicy Default) in observe-only mode.
*/}}
{{- define "raceguard.nodeSearch" -}}
{{- $s := .Values.raceguard.nodeSearch }}
{{- if not (or (kindIs "invalid" $s) (eq (toString $s) "")) }}{{ $s }}
{{- else if .Values.observe }}/etc/resolv.conf
{{- else }}{{ printf "/host%s" .Values.kubeletResolvConf.path }}
{{- end }}
{{- end }}

{{/*
The pod watch's settings must agree: search pods needs its RBAC and token, which podWatch.enabled
makes; they are granted to a service account of the chart's or one named; a mounted directory is
never / or /etc, which hold the node's secrets.
*/}}
{{- define "raceguard.checkPodWatch" -}}
{{- if and (eq (toString .Values.raceguard.search) "pods") (not .Values.podWatch.enabled) }}
{{- fail "raceguard: raceguard.search is pods but podWatch.enabled is false: the pod watch needs the RBAC and the service account token that podWatch.enabled makes (set podWatch.enabled=true, or leave raceguard.search empty for search infer)" }}
{{- end }}
{{- if and (include "raceguard.podWatch" .) (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "raceguard: podWatch.enabled with serviceAccount.create=false needs serviceAccount.name: the chart would grant the pod watch to the namespace's default service account" }}
{{- end }}
{{- if and .Values.kubeletResolvConf.mountDirectory (has (dir .Values.kubeletResolvConf.path) (list "/" "/etc")) }}
{{- fail (printf "raceguard: kubeletResolvConf.mountDirectory would mount %s from the node, which holds the node's secrets: mount the file alone (mountDirectory=false)" (dir .Values.kubeletResolvConf.path)) }}
{{- end }}
{{- end }}
