#!/usr/bin/env bash
# The full KLB test suite on a fresh machine: set-up, then every package's suites against real
# components. Ends with one line: `tests: N passed, N failed, N skipped`.
# Arguments select test files by substring, e.g. `scripts/test.sh control-plane`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KLB_KUBE_APISERVER="$("$root/scripts/setup.sh" | tail -n 1)"
export KLB_KUBE_APISERVER
cd "$root"
# The in-cluster suite runs the reference images built from their Dockerfiles (cached by inputs):
# built when it is selected (no arguments, or one that is part of its path).
cluster_suite=examples/reference-controller/test/cluster.test.ts
build_images=$(( $# == 0 ))
for arg in "$@"; do [[ "$cluster_suite" == *"$arg"* ]] && build_images=1; done
if (( build_images )); then
  KLB_CLUSTER_IMAGES="$(scripts/build-images.sh | tail -n 1)"
  export KLB_CLUSTER_IMAGES
fi
exec node scripts/run-tests.mjs "$@"
