package artifacts

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/raceguard/raceguard/test/testenv"
)

// TestLicense: LICENSE is the Apache License 2.0, CoreDNS's text byte for byte as in the CoreDNS
// module this one builds against but for its appendix's example notice, which names CoreDNS's
// authors there and stays the license's own placeholder here (raceguard's copyright holders are
// NOTICE's); NOTICE names the product and its copyright holders first, as the license's section
// 4(d) expects of a NOTICE file, and says what the binaries contain.
func TestLicense(t *testing.T) {
	_, src := corednsSource(t)
	want, err := os.ReadFile(filepath.Join(src, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	holder := regexp.MustCompile(`(?m)^   Copyright .*$`)
	if n := len(holder.FindAll(want, -1)); n != 1 {
		t.Fatalf("CoreDNS's LICENSE has %d copyright lines, want the appendix's one", n)
	}
	want = holder.ReplaceAll(want, []byte("   Copyright {yyyy} {name of copyright owner}"))
	if got := testenv.ReadRepoFile(t, "LICENSE"); !bytes.Equal(got, want) {
		t.Errorf("LICENSE differs from CoreDNS's %s with the appendix's placeholder notice", filepath.Join(src, "LICENSE"))
	}
	if !bytes.Contains(want, []byte("Apache License\n                           Version 2.0, January 2004")) {
		t.Errorf("CoreDNS's LICENSE is no longer the Apache License 2.0: decide what raceguard's is")
	}

	notice := testenv.ReadRepoFile(t, "NOTICE")
	if !regexp.MustCompile(`\Araceguard\nCopyright 20\d\d(-20\d\d)? The raceguard Authors\n`).Match(notice) {
		t.Errorf("NOTICE: want the product name, then its copyright line; got\n%s", notice)
	}
	for _, s := range []string{"Apache License, Version 2.0", "CoreDNS"} {
		if !bytes.Contains(notice, []byte(s)) {
			t.Errorf("NOTICE does not mention %s", s)
		}
	}
}
