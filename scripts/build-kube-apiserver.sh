#!/usr/bin/env bash
# Builds (or reuses) the pinned kube-apiserver into the repository's .cache/ and prints its path
# (see scripts/build-kube-binaries.sh, which builds every component the same way).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/build-kube-binaries.sh" kube-apiserver
