// Command rootfs writes the container image's root filesystem as one tar layer, which the
// Dockerfile ADDs to scratch. Writing the tar here, rather than copying files into the image,
// lets the layer carry what copying cannot without privileges: the CoreDNS binary's file
// capability, cap_net_bind_service=+ep, as a PAX security.capability extended attribute
// (setcap needs CAP_SETFCAP, i.e. root, on the build host). A container runtime that extracts the
// layer sets the attribute, so the image's user, 65532, can bind port 53, as with CoreDNS's own
// image. Every entry belongs to root with a fixed time, so the layer is reproducible.
//
//	go run ./hack/rootfs -coredns .build/image/linux-arm64/coredns -o .build/image/rootfs-arm64.tar
//
// The layer holds /coredns, /etc/passwd and /etc/group (root and nonroot, 65532, as distroless's
// nonroot image), the CA certificates for forward over TLS and the kubernetes plugin
// (-ca-certificates, the build host's by default), and LICENSE and NOTICE in
// /usr/share/doc/raceguard.
package main

import (
	"archive/tar"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// capNetBindService is CAP_NET_BIND_SERVICE's bit (linux/capability.h).
const capNetBindService = 10

// fileCapability returns a struct vfs_cap_data (linux/capability.h), revision 2, little endian:
// the capabilities in caps permitted, and effective (VFS_CAP_FLAGS_EFFECTIVE) at exec.
func fileCapability(caps ...uint) []byte {
	const (
		revision2 = 0x02000000
		effective = 0x000001
	)
	var permitted [2]uint32
	for _, c := range caps {
		permitted[c/32] |= 1 << (c % 32)
	}
	b := make([]byte, 20) // magic_etc, then {permitted, inheritable} for bits 0-31 and 32-63
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], permitted[0])
	binary.LittleEndian.PutUint32(b[12:], permitted[1])
	return b
}

func main() {
	coredns := flag.String("coredns", "", "the static CoreDNS binary for the image's platform")
	certs := flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle")
	doc := flag.String("doc", ".", "the directory holding LICENSE and NOTICE")
	out := flag.String("o", "", "the tar file to write")
	flag.Parse()
	if *coredns == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(*out, *coredns, *certs, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "rootfs:", err)
		os.Exit(1)
	}
}

// entry is a file or directory of the layer; a file's content comes from src or body.
type entry struct {
	name      string
	mode      int64
	src       string
	body      string
	paxRecord map[string]string
}

func write(out, coredns, certs, doc string) error {
	entries := []entry{
		{name: "coredns", mode: 0o755, src: coredns, paxRecord: map[string]string{
			"SCHILY.xattr.security.capability": string(fileCapability(capNetBindService)),
		}},
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\nnonroot:x:65532:\n"},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, src: certs},
		{name: "usr/", mode: 0o755},
		{name: "usr/share/", mode: 0o755},
		{name: "usr/share/doc/", mode: 0o755},
		{name: "usr/share/doc/raceguard/", mode: 0o755},
		{name: "usr/share/doc/raceguard/LICENSE", mode: 0o644, src: filepath.Join(doc, "LICENSE")},
		{name: "usr/share/doc/raceguard/NOTICE", mode: 0o644, src: filepath.Join(doc, "NOTICE")},
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := tar.NewWriter(f)
	for _, e := range entries {
		if err := add(w, e); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	if err := w.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func add(w *tar.Writer, e entry) error {
	h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX, PAXRecords: e.paxRecord}
	if e.name[len(e.name)-1] == '/' {
		h.Typeflag = tar.TypeDir
		return w.WriteHeader(h)
	}
	body := []byte(e.body)
	if e.src != "" {
		var err error
		if body, err = os.ReadFile(e.src); err != nil {
			return err
		}
	}
	h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
	if err := w.WriteHeader(h); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}
