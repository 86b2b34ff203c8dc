#!/usr/bin/env bash
# Builds kube-apiserver from the official Kubernetes Go module at a pinned release and caches
# the binary by version under $KLB_CACHE_DIR/kube/<version>/ (default: the user's cache
# directory, ${XDG_CACHE_HOME:-~/.cache}/klb). Idempotent: a cached binary is reused.
# Shipped in @klb/testing: `npx klb-testing apiserver` runs it; the repository's
# scripts/build-kube-apiserver.sh runs it with the repository's .cache/.
#
#   build-kube-apiserver.sh                    # prints the path of the binary
#   KUBE_VERSION=v1.35.4 build-kube-apiserver.sh
#
# Kubernetes' own go.mod replaces every k8s.io/* staging module with ./staging/src/k8s.io/X;
# outside the Kubernetes tree those must point at the matching v0.N.P releases instead, so the
# throwaway module below maps each of them.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
cache="${KLB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/klb}/kube/$KUBE_VERSION"
bin="$cache/kube-apiserver"

if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-kube-apiserver: the Go toolchain is required to build kube-apiserver $KUBE_VERSION (go is not on PATH; install the Go toolchain, 1.24 or newer, or set KLB_KUBE_APISERVER to a kube-apiserver binary)" >&2; exit 1; }

staging_version="v0.${KUBE_VERSION#v1.}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

echo "build-kube-apiserver: building kube-apiserver $KUBE_VERSION (first build takes several minutes)" >&2
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
go mod init klb.local/kube-apiserver-build >/dev/null 2>&1

# Where the module proxy put k8s.io/kubernetes' go.mod: its replace lines name the staging modules.
gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[[ -f "$gomod" ]] || { echo "build-kube-apiserver: could not download k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }

{
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo "replace ("
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => ./staging/src/k8s.io/.*#\1#p' "$gomod" |
    sort -u | while read -r mod; do echo "  $mod => $mod $staging_version"; done
  echo ")"
} >> go.mod

cat > tools.go <<'EOF'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
EOF

go mod tidy >/dev/null 2>&1 || go mod download >/dev/null
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
  -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) \
  -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
  -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$bin.tmp" "$bin"
echo "build-kube-apiserver: built $("$bin" --version)" >&2
echo "$bin"
