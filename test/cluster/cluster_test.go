package cluster

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// modes are kube-proxy's modes, each a subtest of TestCluster with its own nodes.
var modes = []string{IPTables, NFTables, IPVS}

// scenarios are issue 21's list, run in this order on each mode's nodes: each leaves the nodes
// as the next expects (the node-local servers running or not, kube-proxy synced, the fault off)
// or says what it needs itself.
var scenarios = []struct {
	name string
	run  func(t *testing.T, w *world)
}{
	{"1-transparent", scenarioTransparent},
	{"2-kill", scenarioKill},
	{"3-proxy-restart", scenarioProxyRestart},
	{"4-kube-dns-churn", scenarioChurn},
	{"5-surge", scenarioSurge},
	{"6-policy", scenarioPolicy},
	{"7-real-race", scenarioRace},
	{"1b-boot-order", scenarioBootOrder},
	{"8-clients", scenarioClients},
}

// TestCluster runs every scenario for kube-proxy in each mode: iptables, nftables and IPVS (where
// the kernel has it). Each scenario logs one SUMMARY line.
func TestCluster(t *testing.T) {
	t.Cleanup(func() { t.Logf("the scenarios' summaries:\n%s", summaryTable()) })
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			if only := onlyModes(); len(only) > 0 && !slices.Contains(only, mode) {
				t.Skipf("Skipping: RACEGUARD_CLUSTER_MODES=%s", strings.Join(only, ","))
			}
			if mode == IPVS {
				if err := IPVSAvailable(); err != nil {
					t.Skipf("Skipping kube-proxy's IPVS mode: %v", err)
				}
			}
			w := newWorld(t, mode, false)
			for _, s := range scenarios {
				if only := onlyScenarios(); len(only) > 0 && !slices.Contains(only, s.name) {
					continue
				}
				t.Run(s.name, func(t *testing.T) { s.run(t, w) })
			}
		})
	}
}

// onlyModes is RACEGUARD_CLUSTER_MODES, and onlyScenarios RACEGUARD_CLUSTER_SCENARIOS: comma-separated
// lists of the modes and scenarios to run (all when empty), for working on one.
func onlyModes() []string { return envList("RACEGUARD_CLUSTER_MODES") }

func onlyScenarios() []string { return envList("RACEGUARD_CLUSTER_SCENARIOS") }

func envList(name string) []string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}
