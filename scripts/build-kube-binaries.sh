#!/usr/bin/env bash
# Builds (or reuses) Kubernetes components at the pinned release into the repository's .cache/
# and prints their paths, one per argument. The build itself ships in @klb/testing
# (packages/testing/scripts/build-kube-binaries.sh), the script `npx klb-testing apiserver` runs.
#
#   scripts/build-kube-binaries.sh kube-apiserver kubelet kube-proxy
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KLB_CACHE_DIR="${KLB_CACHE_DIR:-$root/.cache}" exec "$root/packages/testing/scripts/build-kube-binaries.sh" "$@"
