package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// run runs a command with a time bound and returns its combined output, or an error that quotes it.
func run(name string, args ...string) (string, error) {
	return runInput("", name, args...)
}

func runInput(stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// ip runs ip(8) with the given arguments.
func ip(args ...string) error {
	_, err := run("ip", args...)
	return err
}

// nsExec runs a command inside network namespace ns.
func nsExec(ns string, args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Do runs f on an OS thread that has joined network namespace ns, so sockets f creates live in
// ns. Goroutines f starts run on other threads, in the test's own namespace; sockets keep the
// namespace they were created in, so f should only create them. An empty ns runs f as it is.
func Do(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	target, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	self, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own netns: %w", err)
	}
	defer unix.Close(self)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in ns: keep it locked so the runtime retires it with this goroutine.
		return fmt.Errorf("setns back from %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// nsPrefix starts the name of every namespace a lab makes; the pid after it lets a later run
// remove what a crashed one left behind.
const nsPrefix = "rglab-"

var staleNS = regexp.MustCompile(`^` + nsPrefix + `(\d+)-`)

// sweep deletes the namespaces (and their /etc/netns folders) of lab processes that are gone.
func sweep() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		m := staleNS.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid == os.Getpid() || processAlive(pid) {
			continue
		}
		killNamespace(e.Name())
		ip("netns", "delete", e.Name())
		os.RemoveAll(filepath.Join("/etc/netns", e.Name()))
	}
}

func processAlive(pid int) bool { return unix.Kill(pid, 0) == nil }

// killNamespace kills every process still running in namespace ns.
func killNamespace(ns string) {
	out, _ := run("ip", "netns", "pids", ns)
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// NewID returns a fresh prefix for the names of a set of namespaces, rglab-<pid>-<n>-, which a
// later lab's sweep removes if this process crashes. It sweeps first.
func NewID() string {
	sweep()
	return fmt.Sprintf("%s%d-%d-", nsPrefix, os.Getpid(), labSeq.Add(1))
}

// AddNamespace makes network namespace ns with its loopback up.
func AddNamespace(ns string) error {
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	return ip("-n", ns, "link", "set", "lo", "up")
}

// RemoveNamespace kills every process in namespace ns and removes it and its /etc/netns files.
func RemoveNamespace(ns string) {
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		killNamespace(ns)
		ip("netns", "delete", ns)
	}
	os.RemoveAll(filepath.Join("/etc/netns", ns))
}

// IP runs ip(8) with args.
func IP(args ...string) error { return ip(args...) }

// NSExec runs a command inside namespace ns, bounded in time, and returns its combined output.
func NSExec(ns string, args ...string) (string, error) { return nsExec(ns, args...) }

// NFT runs an nft script inside namespace ns.
func NFT(ns, script string) error {
	_, err := runInput(script, "ip", "netns", "exec", ns, "nft", "-f", "-")
	return err
}
