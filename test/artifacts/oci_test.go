package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// ociImage is one platform's image of an OCI archive: its configuration and its layers, the
// blobs as the archive holds them (gzip-compressed tars).
type ociImage struct {
	config ociConfig
	layers [][]byte
}

// ociConfig is the part of an OCI image configuration the tests read.
type ociConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User         string              `json:"User"`
		Entrypoint   []string            `json:"Entrypoint"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"config"`
}

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

// readOCIArchive reads an OCI archive (an image layout in a tar) whose index holds one image
// index, a manifest list, as `buildah manifest push --all ... oci-archive:` writes, and returns
// its images by platform ("linux/arm64").
func readOCIArchive(t *testing.T, path string) map[string]ociImage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blobs := map[string][]byte{}
	var index []byte
	r := tar.NewReader(f)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case name == "index.json":
			index = b
		case strings.HasPrefix(name, "blobs/sha256/"):
			blobs["sha256:"+strings.TrimPrefix(name, "blobs/sha256/")] = b
		}
	}
	decode := func(what string, b []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v", path, what, err)
		}
	}
	var top struct{ Manifests []ociDescriptor }
	decode("index.json", index, &top)
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("%s: index.json holds %+v, want one image index (the manifest list)", path, top.Manifests)
	}
	var list struct{ Manifests []ociDescriptor }
	decode("manifest list", blobs[top.Manifests[0].Digest], &list)
	images := map[string]ociImage{}
	for _, m := range list.Manifests {
		if m.Platform == nil {
			t.Fatalf("%s: manifest %s in the list has no platform", path, m.Digest)
		}
		var manifest struct {
			Config ociDescriptor
			Layers []ociDescriptor
		}
		decode("manifest "+m.Digest, blobs[m.Digest], &manifest)
		var img ociImage
		decode("config "+manifest.Config.Digest, blobs[manifest.Config.Digest], &img.config)
		for _, l := range manifest.Layers {
			img.layers = append(img.layers, blobs[l.Digest])
		}
		if img.config.OS != m.Platform.OS || img.config.Architecture != m.Platform.Architecture {
			t.Errorf("%s: the list says %s/%s, the image's configuration %s/%s", path, m.Platform.OS, m.Platform.Architecture, img.config.OS, img.config.Architecture)
		}
		images[m.Platform.OS+"/"+m.Platform.Architecture] = img
	}
	return images
}

// checkImageConfig checks an image's configuration against CoreDNS's conventions and the labels
// the build must have set.
func checkImageConfig(t *testing.T, cfg ociConfig, arch string, labels map[string]string) {
	t.Helper()
	c := cfg.Config
	if cfg.OS != "linux" || cfg.Architecture != arch {
		t.Errorf("Platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, arch)
	}
	if c.User != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532 (numeric, for runAsNonRoot)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/coredns"}) {
		t.Errorf("ENTRYPOINT %v, want [/coredns]", c.Entrypoint)
	}
	for _, p := range []string{"53/tcp", "53/udp", "9153/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("EXPOSE: no %s in %v", p, c.ExposedPorts)
		}
	}
	for k, want := range labels {
		if c.Labels[k] != want {
			t.Errorf("Label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
}

// checkImageLayer checks an image's one layer: a static binary for machine at /coredns with the
// file capability cap_net_bind_service=+ep, owned by root, and the files beside it.
func checkImageLayer(t *testing.T, img ociImage, machine elf.Machine) {
	t.Helper()
	if len(img.layers) != 1 {
		t.Fatalf("%d layers, want the one of rootfs-%s.tar", len(img.layers), img.config.Architecture)
	}
	z, err := gzip.NewReader(bytes.NewReader(img.layers[0]))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	var binary []byte
	r := tar.NewReader(z)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		files[name] = h
		if name == "coredns" {
			if binary, err = io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range []string{"coredns", "etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt",
		"usr/share/doc/raceguard/LICENSE", "usr/share/doc/raceguard/NOTICE"} {
		h, ok := files[f]
		if !ok {
			t.Errorf("No /%s in the layer", f)
			continue
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("/%s belongs to %d:%d, want root", f, h.Uid, h.Gid)
		}
	}
	h := files["coredns"]
	if h == nil {
		t.FailNow()
	}
	if h.Mode&0o111 == 0 {
		t.Errorf("/coredns mode %o, want executable", h.Mode)
	}
	if caps, err := permittedCapabilities(h.PAXRecords["SCHILY.xattr.security.capability"]); err != "" || caps != 1<<capNetBindService {
		t.Errorf("/coredns file capability %x (%s), want exactly cap_net_bind_service=+ep (%x)", caps, err, 1<<capNetBindService)
	}

	e, elfErr := elf.NewFile(bytes.NewReader(binary))
	if elfErr != nil {
		t.Fatalf("/coredns is not an ELF binary: %v", elfErr)
	}
	if e.Class != elf.ELFCLASS64 || e.Data != elf.ELFDATA2LSB || e.Machine != machine || e.Type != elf.ET_EXEC {
		t.Errorf("/coredns: %v %v %v %v, want a 64-bit little-endian executable for %v", e.Class, e.Data, e.Type, e.Machine, machine)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("/coredns is dynamically linked (%v): a FROM scratch image has no libc", p.Type)
		}
	}
	t.Logf("linux/%s: /coredns %s, %.1f MB; layer %.1f MB compressed", img.config.Architecture, e.Machine, float64(len(binary))/1e6, float64(len(img.layers[0]))/1e6)
}

// permittedCapabilities decodes a security.capability attribute (struct vfs_cap_data,
// linux/capability.h): the permitted set of a revision 2 attribute with the effective flag, or
// a reason why it is not one.
func permittedCapabilities(attr string) (uint64, string) {
	const (
		revisionMask = 0xFF000000
		revision2    = 0x02000000
		effective    = 0x000001
	)
	b := []byte(attr)
	if len(b) != 20 {
		return 0, "not a revision 2 attribute"
	}
	magic := binary.LittleEndian.Uint32(b)
	if magic&revisionMask != revision2 || magic&effective == 0 {
		return 0, "not revision 2 with the effective flag"
	}
	return uint64(binary.LittleEndian.Uint32(b[4:])) | uint64(binary.LittleEndian.Uint32(b[12:]))<<32, ""
}
