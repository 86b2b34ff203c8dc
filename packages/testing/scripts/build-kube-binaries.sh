#!/usr/bin/env bash
# Builds Kubernetes components from the official Kubernetes Go module at a pinned release and
# caches each binary by version under $KLB_CACHE_DIR/kube/<version>/ (default: the user's cache
# directory, ${XDG_CACHE_HOME:-~/.cache}/klb). Idempotent: cached binaries are reused; only the
# missing ones are built, all in one `go build`. Shipped in @klb/testing: `npx klb-testing
# apiserver` runs it for kube-apiserver; the KLB repository's scripts/build-kube-binaries.sh runs
# it with the repository's .cache/.
#
#   build-kube-binaries.sh kube-apiserver              # prints the binary's path
#   build-kube-binaries.sh kubelet kube-proxy kube-controller-manager kube-scheduler
#   KUBE_VERSION=v1.35.4 build-kube-binaries.sh kubelet
#
# Prints one path per argument, in argument order. Kubernetes' own go.mod replaces every k8s.io/*
# staging module with ./staging/src/k8s.io/X; outside the Kubernetes tree those must point at the
# matching v0.N.P releases instead, so the throwaway module below maps each of them.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
cache="${KLB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/klb}/kube/$KUBE_VERSION"
(($#)) || set -- kube-apiserver

known=" kube-apiserver kubelet kube-proxy kube-controller-manager kube-scheduler kubectl "
# The version a built binary reports (kubectl has no --version flag).
version_of() {
  if [[ "$1" == kubectl ]]; then "$cache/$1" version --client 2>/dev/null | head -n 1; else "$cache/$1" --version 2>/dev/null; fi
}
missing=()
for name in "$@"; do
  [[ "$known" == *" $name "* ]] || { echo "build-kube-binaries: unknown component $name (one of:$known)" >&2; exit 2; }
  [[ -x "$cache/$name" ]] && version_of "$name" | grep -q "$KUBE_VERSION" || missing+=("$name")
done

if ((${#missing[@]})); then
  command -v go >/dev/null || { echo "build-kube-binaries: building ${missing[*]} $KUBE_VERSION needs the Go toolchain (1.24 or newer), which is not on PATH" >&2; exit 1; }
  staging_version="v0.${KUBE_VERSION#v1.}"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$cache"
  echo "build-kube-binaries: building ${missing[*]} $KUBE_VERSION (a first build takes several minutes)" >&2
  cd "$work"
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOTOOLCHAIN=local
  go mod init klb.local/kube-build >/dev/null 2>&1

  # Where the module proxy put k8s.io/kubernetes' go.mod: its replace lines name the staging modules.
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$gomod" ]] || { echo "build-kube-binaries: could not download k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => ./staging/src/k8s.io/.*#\1#p' "$gomod" |
      sort -u | while read -r mod; do echo "  $mod => $mod $staging_version"; done
    echo ")"
  } >> go.mod
  {
    printf '//go:build tools\n\npackage tools\n\n'
    for name in "${missing[@]}"; do echo "import _ \"k8s.io/kubernetes/cmd/$name\""; done
  } > tools.go

  go mod tidy >/dev/null 2>&1 || go mod download >/dev/null
  pkgs=()
  for name in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  mkdir out
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) \
    -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
    -o out/ "${pkgs[@]}"
  for name in "${missing[@]}"; do
    # Same file system as the cache only after the copy: rename last, so a reader never sees half a binary.
    cp "out/$name" "$cache/.$name.$$"
    mv "$cache/.$name.$$" "$cache/$name"
    echo "build-kube-binaries: built $name: $(version_of "$name")" >&2
  done
fi

for name in "$@"; do echo "$cache/$name"; done
