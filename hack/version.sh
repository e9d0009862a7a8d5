#!/usr/bin/env bash
# Prints the raceguard version of the checkout, as the builds from it (make coredns, make image)
# report it: `git describe` of the latest v* tag (v0.1.0, or v0.1.0-3-g7e598a18e4d9 three
# commits later, or the commit alone before any tag), with -dirty for uncommitted changes; "devel"
# outside git. It is also a valid image tag.
set -euo pipefail
git -C "$(dirname "$0")/.." describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null || echo devel
