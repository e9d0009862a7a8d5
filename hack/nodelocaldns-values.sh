#!/usr/bin/env bash
# Maps NodeLocal DNSCache's Corefile to the raceguard chart's zones value (deploy/README.md,
# "Migrating from NodeLocal DNSCache"): one zone per server block, in the same order, with the
# kube-dns blocks first (the chart's first zone carries the node set-up and must go to kube-dns).
#
#   kubectl -n kube-system get configmap node-local-dns -o jsonpath='{.data.Corefile}' \
#       | hack/nodelocaldns-values.sh [CLUSTER-DOMAIN] > nodelocaldns-values.yaml
#   helm install raceguard raceguard-VERSION.tgz -n kube-system -f nodelocaldns-values.yaml ...
#
# A block's forward target maps as node-cache fills it in:
#   __PILLAR__CLUSTER__DNS__ (kube-dns, through kube-dns-upstream)   -> forward: kube-dns
#   __PILLAR__UPSTREAM__SERVERS__ or /etc/resolv.conf                -> forward: node
#   addresses (a stub domain's servers)                               -> forward: [addresses]
# and force_tcp in its block to forceTCP: true. __PILLAR__DNS__DOMAIN__ is CLUSTER-DOMAIN
# (cluster.local by default). What raceguard sets itself is left out: bind (its addresses),
# health, prometheus (:9153, where node-cache had :9253), reload, loop (kept for forward: node),
# log, errors and cache (the chart's cache values apply to every block). A block without forward
# (hosts, file) has no mapping: the script says so and fails; use the chart's corefile value.
set -euo pipefail
domain=${1:-cluster.local}
awk -v domain="$domain" '
	function fail(msg) { print "nodelocaldns-values: " msg > "/dev/stderr"; bad = 1; exit 1 }
	{ sub(/#.*/, "") }
	depth == 0 && $NF == "{" {
		zone = $1; sub(/:[0-9]+$/, "", zone)
		if (zone == "__PILLAR__DNS__DOMAIN__") zone = domain
		n++; zones[n] = zone; to[n] = ""; tcp[n] = "false"
		depth = 1; next
	}
	depth == 1 && $1 == "forward" {
		if ($2 != ".") fail("zone " zones[n] ": forward " $2 " (only forward . is mapped)")
		t = ""
		for (i = 3; i <= NF && $i != "{"; i++) t = t (t == "" ? "" : " ") $i
		if (t == "__PILLAR__CLUSTER__DNS__") to[n] = "kube-dns"
		else if (t == "__PILLAR__UPSTREAM__SERVERS__" || t == "/etc/resolv.conf") to[n] = "node"
		else { gsub(/ /, ", ", t); to[n] = "[" t "]" }
	}
	$1 == "force_tcp" && depth == 2 { tcp[n] = "true" }
	{
		for (i = 1; i <= NF; i++) {
			if ($i == "{" && !(depth == 0)) depth++
			else if ($i == "}") depth--
		}
	}
	END {
		if (bad) exit 1
		if (n == 0) { print "nodelocaldns-values: no server block in the input" > "/dev/stderr"; exit 1 }
		for (i = 1; i <= n; i++) if (to[i] == "") { print "nodelocaldns-values: zone " zones[i] " has no forward: use the chart'"'"'s corefile value" > "/dev/stderr"; exit 1 }
		print "# From NodeLocal DNSCache'"'"'s Corefile by hack/nodelocaldns-values.sh (cluster domain " domain ")."
		print "zones:"
		for (pass = 1; pass <= 2; pass++)
			for (i = 1; i <= n; i++) {
				if ((pass == 1) != (to[i] == "kube-dns")) continue
				printf "  - zone: %s\n    forward: %s\n    forceTCP: %s\n", zones[i], to[i], tcp[i]
			}
	}
'
