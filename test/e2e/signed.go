package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/sign" // signs the zone of signedZone

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/testenv"
)

// signedZone is a zone signed by CoreDNS's sign plugin, and the trust anchor that validates it.
type signedZone struct {
	Origin  string // the zone, fully qualified
	File    string // the signed zone file, for the file plugin
	Anchors string // a trust-anchors file for delv -a, holding the zone's key
	Key     *dns.DNSKEY
}

// signZone signs the zone file src for origin with a new ECDSAP256SHA256 CSK: it writes the key in
// BIND's K<zone>+013+<tag>.key and .private files, runs the sign plugin on them in an in-process
// CoreDNS, and waits for the signed file sign writes (db.<origin>.signed).
func signZone(t *testing.T, src, origin string) *signedZone {
	t.Helper()
	dir := t.TempDir()
	origin = dns.Fqdn(origin)

	key := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     dns.ZONE | dns.SEP, // 257: a CSK, which sign requires
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", origin, key.Algorithm, key.KeyTag()))
	if err := os.WriteFile(base+".key", []byte(key.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(key.PrivateKeyString(priv)), 0o600); err != nil {
		t.Fatal(err)
	}

	// sign never signs a file in place: it reads DBFILE and writes DIRECTORY/db.<origin>.signed.
	body, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db."+strings.TrimSuffix(origin, "."))
	if err := os.WriteFile(db, body, 0o644); err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "db."+origin+"signed")
	i, err := testenv.CoreDNSServer(origin + `:0 {
    sign ` + db + ` {
        key file ` + base + `
        directory ` + dir + `
    }
}`)
	if err != nil {
		t.Fatalf("Could not start the signer: %v", err)
	}
	defer testenv.Stop(i)
	// sign signs in the background at startup and renames the finished file into place.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(signed); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign did not write %s within 10s", signed)
		}
		time.Sleep(20 * time.Millisecond)
	}

	anchors := filepath.Join(dir, "anchors.conf")
	text := fmt.Sprintf("trust-anchors {\n    %q static-key %d %d %d %q;\n};\n", origin, key.Flags, key.Protocol, key.Algorithm, key.PublicKey)
	if err := os.WriteFile(anchors, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return &signedZone{Origin: origin, File: signed, Anchors: anchors, Key: key}
}
