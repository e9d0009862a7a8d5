package testenv

import (
	"errors"
	"os"
	"os/exec"
	"sync"

	"github.com/raceguard/raceguard/test/lab"
)

var (
	corednsOnce sync.Once
	corednsBin  string
	corednsErr  error
)

// CoreDNSBinary returns the custom CoreDNS the lab's DNS servers run: $RACEGUARD_COREDNS (set by
// `make test`), else ./coredns rebuilt once per test run by hack/build-coredns.sh, so a plain
// `go test` never runs a stale binary.
func CoreDNSBinary() (string, error) {
	corednsOnce.Do(func() {
		if corednsBin = os.Getenv("RACEGUARD_COREDNS"); corednsBin != "" {
			return
		}
		script, err := lab.RepoPath("hack/build-coredns.sh")
		if err != nil {
			corednsErr = err
			return
		}
		if out, err := exec.Command(script).CombinedOutput(); err != nil {
			corednsErr = errors.New("hack/build-coredns.sh: " + err.Error() + ": " + string(out))
			return
		}
		corednsBin, corednsErr = lab.RepoPath("coredns")
	})
	return corednsBin, corednsErr
}
