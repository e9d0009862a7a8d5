package stackstart

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/process"
)

var log = clog.NewWithPlugin(module.Name)

// DefaultTarget is the starting stack size aimed at: the deepest stack of a cache hit in the
// default Kubernetes Corefile and in raceguard's node-local one (about 5.5 KiB), with the runtime's
// stack guard, fits in it.
const DefaultTarget = 8 << 10

// EnvName is the environment variable that sets the target: "off", or a power of two of bytes
// from 4096 to 16384.
const EnvName = "RACEGUARD_STACK_START"

const (
	// maxHolders bounds the holders, and their stacks to 1.5 MiB.
	maxHolders = 48
	// maxStart is the largest starting size the controller accepts: the runtime takes stacks up
	// to 16 KiB from a per-P cache, larger ones from the heap under a lock, which costs more than
	// the copies saved.
	maxStart = 16 << 10
	// guard is the runtime's stack guard, rounded up: it adds it to the mean before rounding
	// (928 bytes on linux/amd64, twice as much under the race detector).
	guard = 1 << 10
)

// The controller reads the runtime's figures every sampleEvery, and decides every decideEvery
// samples.
var (
	sampleEvery = 100 * time.Millisecond
	decideEvery = 10
)

var loop process.Resource // the controller

// Acquire starts the mechanism for one more user, aiming at the target that RACEGUARD_STACK_START
// sets (DefaultTarget when unset). A value it cannot read is an error and counts no user; "off"
// counts none either.
func Acquire() error {
	target, err := Target(os.Getenv(EnvName))
	if err != nil || target == 0 {
		return err
	}
	if adaptiveOff(os.Getenv("GODEBUG")) {
		log.Infof("GODEBUG=adaptivestackstart=0: the runtime keeps goroutines' starting stacks at its minimum, no holder is parked")
		return nil
	}
	loop.Acquire(func() func() {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			run(target, stop)
		}()
		return func() { close(stop); <-done }
	}, nil)
	return nil
}

// Release counts one user less; the last stops the controller and every holder. It returns no
// error: it has the signature of a shutdown function.
func Release() error {
	loop.Release()
	return nil
}

// Target reads a value of RACEGUARD_STACK_START: DefaultTarget when empty, 0 for "off".
func Target(v string) (uint64, error) {
	switch v {
	case "":
		return DefaultTarget, nil
	case "off":
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < 4<<10 || n > 16<<10 || bits.OnesCount64(n) != 1 {
		return 0, fmt.Errorf("%s=%q: want off, 4096, 8192 or 16384 (bytes)", EnvName, v)
	}
	return n, nil
}

// adaptiveOff reports whether godebug, a GODEBUG value, turns the runtime's adaptive stack
// start off (its last setting wins, as the runtime reads it).
func adaptiveOff(godebug string) bool {
	off := false
	for _, kv := range strings.Split(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "adaptivestackstart" {
			off = v == "0"
		}
	}
	return off
}

// run is the controller's goroutine: it parks the first holders by estimate, then samples and
// decides until stop is closed, and stops the holders.
func run(target uint64, stop <-chan struct{}) {
	c := newController(target)
	targetGauge.Set(float64(target))
	defer func() {
		c.set(0)
		c.wg.Wait()
		targetGauge.Set(0)
		startingSize.Set(0)
	}()
	c.set(c.firstEstimate())
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
			c.sample()
			if n%decideEvery == 0 {
				c.decide()
			}
		}
	}
}
