#!/usr/bin/env bash
# The KLB demo on a fresh machine: set-up (first run builds kube-apiserver, several minutes),
# then scripts/demo.ts: a real control plane, the reference controller and daemon, the coffee
# example as an original ConfigMap, a Service type=LoadBalancer and an Ingress, fetched through
# their VIPs on 127.0.100.0/24. Ctrl-C stops everything it started; --once runs it all and exits
# (0 on success). Needs root (nginx on port 80 of the VIPs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "demo: preparing (Debian packages, npm dependencies, kube-apiserver build; cached after the first run)"
KLB_KUBE_APISERVER="$("$root/scripts/setup.sh" | tail -n 1)"
export KLB_KUBE_APISERVER
cd "$root"
exec node --conditions=klb-source --import tsx scripts/demo.ts "$@"
