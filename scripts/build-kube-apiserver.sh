#!/usr/bin/env bash
# Builds (or reuses) the pinned kube-apiserver into the repository's .cache/ and prints its path.
# The build itself ships in @klb/testing (packages/testing/scripts/build-kube-apiserver.sh), the
# same script `npx klb-testing apiserver` runs for SDK users.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KLB_CACHE_DIR="${KLB_CACHE_DIR:-$root/.cache}" exec "$root/packages/testing/scripts/build-kube-apiserver.sh" "$@"
