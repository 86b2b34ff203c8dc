#!/usr/bin/env bash
# The KLB demo on a fresh machine: set-up (first run builds kube-apiserver, several minutes),
# then scripts/demo.ts. Ctrl-C stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "demo: preparing (Debian packages, npm dependencies, kube-apiserver build; cached after the first run)"
KLB_KUBE_APISERVER="$("$root/scripts/setup.sh" | tail -n 1)"
export KLB_KUBE_APISERVER
cd "$root"
exec node --conditions=klb-source --import tsx scripts/demo.ts "$@"
