// Package artifacts checks what the repository ships besides the code: the README's
// Compilation section, run as a user would in a copy of CoreDNS (TestCompilation); LICENSE and
// NOTICE; the manifests of deploy/ (decoded strictly, cross-checked, their Corefiles started);
// the alert rules and dashboard of monitoring/ against the metrics the build exports; and the
// container image of the Dockerfile, built and run (root, buildah and podman; skipped without
// them unless RACEGUARD_LAB=require).
package artifacts
