#!/usr/bin/env bash
# Installs what KLB's tests and demo need on a fresh Debian machine, idempotently:
# Debian packages (the real components, and for the test cluster containerd, runc, the CNI
# plugins, iptables, and buildah, mmdebstrap, umoci and skopeo to build its images), npm
# dependencies, and the Kubernetes components built from the Kubernetes Go module (cached under
# .cache/). Prints the kube-apiserver path last.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

debs=(etcd-server nginx-light libnginx-mod-stream keepalived iproute2 iputils-ping procps wrk openssl ca-certificates keystone octavia-api python3-oslotest neutron-server
  containerd runc containernetworking-plugins iptables buildah mmdebstrap umoci skopeo)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian packages start system services; KLB runs its own instances.
  for svc in nginx keepalived etcd keystone octavia-api neutron-api neutron-rpc-server containerd; do
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
  done
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

# Every Kubernetes component in one go build; the apiserver's path is the line printed last.
scripts/build-kube-binaries.sh kubelet kube-proxy kube-controller-manager kube-scheduler kubectl kube-apiserver | tail -n 1
