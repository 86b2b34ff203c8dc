#!/usr/bin/env bash
# Builds kube-apiserver from the official Kubernetes Go module at a pinned release (see
# scripts/build-kube-binaries.sh, which builds every component the same way) and prints its path.
#
#   scripts/build-kube-apiserver.sh
#   KUBE_VERSION=v1.35.4 scripts/build-kube-apiserver.sh
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/build-kube-binaries.sh" kube-apiserver
