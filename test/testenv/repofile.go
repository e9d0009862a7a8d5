package testenv

import (
	"os"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

// ReadRepoFile returns the contents of the repository's file rel (a path from the repository's
// root), failing t when it cannot be read.
func ReadRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	path, err := lab.RepoPath(rel)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
