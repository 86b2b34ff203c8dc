#!/usr/bin/env bash
# The full KLB test suite on a fresh machine: set-up, then every package's suites against real
# components. Ends with one line: `tests: N passed, N failed, N skipped`.
# Arguments select test files by substring, e.g. `scripts/test.sh control-plane`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KLB_KUBE_APISERVER="$("$root/scripts/setup.sh" | tail -n 1)"
export KLB_KUBE_APISERVER
cd "$root"
exec node scripts/run-tests.mjs "$@"
