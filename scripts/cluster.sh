#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for humans: set-up (Debian packages, the
# Kubernetes components built from the Go module), the images built from KLB's Dockerfiles
# without Docker (scripts/build-images.sh), then scripts/cluster.ts: @klb/testing's startCluster()
# with KLB's keepalived-nginx overlay deployed as the in-cluster tests deploy it. It prints the
# kubeconfig and the client namespace to send traffic from, and runs until Ctrl-C, which stops
# every process it started and restores the host. Needs root.
#   scripts/cluster.sh            # cluster + KLB, until Ctrl-C
#   scripts/cluster.sh --bare     # cluster only
#   scripts/cluster.sh --once     # bring it all up, print, tear down, exit (0 on success)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "cluster: preparing (Debian packages, npm dependencies, Kubernetes builds, images; cached after the first run)"
KLB_KUBE_APISERVER="$("$root/scripts/setup.sh" | tail -n 1)"
KLB_CLUSTER_IMAGES="$("$root/scripts/build-images.sh" | tail -n 1)"
export KLB_KUBE_APISERVER KLB_CLUSTER_IMAGES
cd "$root"
exec node --conditions=klb-source --import tsx scripts/cluster.ts "$@"
