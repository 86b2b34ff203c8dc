#!/usr/bin/env bash
# Fetches the Gateway API CRDs (Standard channel) at the pinned release from the Go module
# sigs.k8s.io/gateway-api (through the Go module proxy) and writes them, unchanged, into
#
#   packages/testing/crds/gateway-api/   shipped in @klb/testing (installGatewayApiCrds)
#   deploy/gateway-api/                  the kustomization users apply (its kustomization.yaml too)
#
# Both are checked in: neither the tests nor users need Go. Run it after changing the version
# below, then update GATEWAY_API_VERSION in packages/testing/src/gateway-api-crds.ts to match
# (the @klb/testing tests fail until they agree).
set -euo pipefail

GATEWAY_API_VERSION=v1.6.3

# The Standard channel files KLB ships: the CRDs and the upstream ValidatingAdmissionPolicy that
# refuses installing older or experimental-channel Gateway API CRDs over these.
files=(
  gateway.networking.k8s.io_gatewayclasses.yaml
  gateway.networking.k8s.io_gateways.yaml
  gateway.networking.k8s.io_httproutes.yaml
  gateway.networking.k8s.io_grpcroutes.yaml
  gateway.networking.k8s.io_referencegrants.yaml
  gateway.networking.k8s.io_tlsroutes.yaml
  gateway.networking.k8s.io_tcproutes.yaml
  gateway.networking.k8s.io_udproutes.yaml
  gateway.networking.k8s.io_backendtlspolicies.yaml
  gateway.networking.k8s.io_listenersets.yaml
  gateway.networking.k8s.io_vap_safeupgrades.yaml
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
testing_dir="$root/packages/testing/crds/gateway-api"
deploy_dir="$root/deploy/gateway-api"

command -v go >/dev/null || { echo "fetch-gateway-api-crds: needs the Go toolchain on PATH" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOTOOLCHAIN=local
go mod init klb.local/gateway-api-crds >/dev/null 2>&1
module_dir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
src="$module_dir/config/crd/standard"
[[ -d "$src" ]] || { echo "fetch-gateway-api-crds: no $src in sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" >&2; exit 1; }

for file in "${files[@]}"; do
  [[ -f "$src/$file" ]] || { echo "fetch-gateway-api-crds: $file is not in $src" >&2; exit 1; }
  # Every object must say it is this release's Standard channel.
  bundles="$(grep -c "^[[:space:]]*gateway.networking.k8s.io/bundle-version: $GATEWAY_API_VERSION\$" "$src/$file" || true)"
  channels="$(grep -c '^[[:space:]]*gateway.networking.k8s.io/channel: standard$' "$src/$file" || true)"
  objects="$(grep -c '^kind: ' "$src/$file" || true)"
  if ((objects == 0 || bundles != objects || channels != objects)); then
    echo "fetch-gateway-api-crds: $file: $objects objects, $bundles with bundle-version $GATEWAY_API_VERSION, $channels with channel standard" >&2
    exit 1
  fi
done
for file in "$src"/*.yaml; do
  [[ " ${files[*]} " == *" ${file##*/} "* ]] || echo "fetch-gateway-api-crds: not shipped: ${file##*/} (new upstream?)" >&2
done

mkdir -p "$testing_dir" "$deploy_dir"
rm -f "$testing_dir"/*.yaml
find "$deploy_dir" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml -delete
for file in "${files[@]}"; do
  install -m 0644 "$src/$file" "$testing_dir/$file"
  install -m 0644 "$src/$file" "$deploy_dir/$file"
done
{
  echo "# The Gateway API CRDs, Standard channel $GATEWAY_API_VERSION, as upstream publishes them (written by"
  echo "# scripts/fetch-gateway-api-crds.sh; do not edit). Skip this kustomization when the cluster already"
  echo "# has the Gateway API CRDs. Apply it server-side, before a backend overlay (whose GatewayClass"
  echo "# needs them): kubectl apply --server-side -k deploy/gateway-api"
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  for file in "${files[@]}"; do echo "  - $file"; done
} > "$deploy_dir/kustomization.yaml"
echo "fetch-gateway-api-crds: Gateway API $GATEWAY_API_VERSION (Standard channel): ${#files[@]} files in" \
  "${testing_dir#"$root/"} and ${deploy_dir#"$root/"}" >&2
