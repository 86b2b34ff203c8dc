#!/usr/bin/env bash
# Builds the container images of KLB's test cluster without Docker and without a registry, each
# saved as a docker-archive (the format `ctr -n k8s.io images import` and `docker load` read) and
# cached under .cache/images/ by a hash of its inputs, so a rerun with nothing changed builds
# nothing:
#   base    Debian 12 (mmdebstrap --variant=minbase) plus this machine's Node.js and npm, packed
#           as an OCI image with umoci: the NODE_IMAGE the reference Dockerfiles are built FROM
#   pause   the pod sandbox, a static Go program (packages/testing/images/pause)
#   echo    the test app answering with its pod's name (packages/testing/images/echo), also tagged
#           as the coffee example's nginxdemos/hello:plain-text, which no registry serves here
#   reference-controller, reference-daemon
#           examples/*/Dockerfile built unchanged by buildah (--isolation chroot) from the base,
#           under the names the shipped manifests use
# Writes .cache/images/images.json ({"<name>": {"image": "<reference>", "archive": "<path>"}})
# and prints its path last.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${KLB_CACHE_DIR:-$root/.cache}/images"
mkdir -p "$cache"
store="$cache/storage"
runroot="$cache/runroot"
storage="containers-storage:[overlay@$store+$runroot]"
bah=(buildah --root "$store" --runroot "$runroot" --storage-driver overlay)
log() { echo "build-images: $*" >&2; }

for tool in mmdebstrap umoci skopeo buildah go node npm; do
  command -v "$tool" >/dev/null || { log "$tool is required: run scripts/setup.sh"; exit 1; }
done

work="$(mktemp -d "$cache/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
key() { sha256sum | cut -c1-16; }
# A hash of files' names and contents.
files_key() { (cd "$root" && sha256sum "$@") | key; }

# An OCI layout $1 with one image "img" made of the layer tarballs $3..., configured by the
# umoci config arguments in the array named $2.
oci_image() {
  local layout="$1" config_ref="$2[@]"
  shift 2
  umoci init --layout "$layout"
  umoci new --image "$layout:img"
  for layer in "$@"; do umoci raw add-layer --image "$layout:img" "$layer"; done
  umoci config --image "$layout:img" "${!config_ref}"
}

# docker-archive $1 from image reference $2 with the name $3 (and extra names $4...).
save_archive() {
  local out="$1" from="$2" name="$3"
  shift 3
  local extra=()
  for tag in "$@"; do extra+=(--additional-tag "$tag"); done
  rm -f "$out.tmp"
  skopeo copy --quiet "${extra[@]}" "$from" "docker-archive:$out.tmp:$name"
  mv "$out.tmp" "$out"
}

# --- base: Debian minbase + Node.js -------------------------------------------------------------
node_bin="$(command -v node)"
npm_dir="$(npm root -g)/npm"
suite=bookworm
ca_bundle=/etc/ssl/certs/ca-certificates.crt
base_key="$({ echo "base recipe 1 $suite $(node --version) $(npm --version)"; sha256sum "$node_bin" "$ca_bundle"; } | key)"
base_image="localhost/klb-node-base:$base_key"
if ! "${bah[@]}" inspect --type image "$base_image" >/dev/null 2>&1; then
  log "base image: Debian $suite (mmdebstrap) + Node.js $(node --version)"
  aptopts=()
  # The same apt options as this machine's (e.g. a snapshot mirror whose Release files expired).
  while read -r line; do aptopts+=(--aptopt="$line"); done < <(apt-config dump | grep -E '^Acquire::Check-(Valid-Until|Date) ' || true)
  mmdebstrap --quiet --variant=minbase --include=ca-certificates "${aptopts[@]}" "$suite" "$work/rootfs.tar" >&2
  mkdir -p "$work/node/usr/bin" "$work/node/usr/lib/node_modules" "$work/node/etc/klb"
  cp "$node_bin" "$work/node/usr/bin/node"
  cp -a "$npm_dir" "$work/node/usr/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/node/usr/bin/npx"
  # npm inside a build reaches the registry the way this machine does (possibly through a
  # TLS-intercepting proxy whose CA only this machine's bundle has).
  cp "$ca_bundle" "$work/node/etc/klb/host-ca-bundle.crt"
  tar -C "$work/node" -cf "$work/node.tar" .
  base_config=(--config.env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    --config.env "NODE_EXTRA_CA_CERTS=/etc/klb/host-ca-bundle.crt" --config.cmd node)
  oci_image "$work/base" base_config "$work/rootfs.tar" "$work/node.tar"
  skopeo copy --quiet "oci:$work/base:img" "$storage$base_image"
fi

# --- static Go images: pause and echo ------------------------------------------------------------
declare -A image archive
go_image() {
  local name="$1" ref="$2"
  shift 2
  local src="packages/testing/images/$name"
  local k
  k="$({ go version; files_key "$src/go.mod" "$src/main.go"; } | key)"
  local out="$cache/$name-$k.tar"
  image[$name]="$ref"
  archive[$name]="$out"
  [[ -f "$out" ]] && return 0
  log "$name image"
  mkdir -p "$work/$name/layer"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$work/$name/layer/$name" .)
  tar -C "$work/$name/layer" -cf "$work/$name/layer.tar" .
  local entrypoint=(--config.entrypoint "/$name")
  oci_image "$work/$name/oci" entrypoint "$work/$name/layer.tar"
  save_archive "$out" "oci:$work/$name/oci:img" "$ref" "$@"
}
go_image pause localhost/klb-pause:1
go_image echo localhost/klb-echo:1 docker.io/nginxdemos/hello:plain-text

# --- the reference images, from their Dockerfiles -----------------------------------------------
# The build context the Dockerfiles see: the sources, without what .dockerignore leaves out.
mapfile -t inputs < <(git ls-files -co --exclude-standard -- package.json package-lock.json tsconfig.base.json packages examples .dockerignore |
  grep -Ev '(^|/)test/|\.md$')
inputs_key="$(files_key "${inputs[@]}")"
dockerfile_image() {
  local name="$1" ref="$2"
  local k
  k="$(echo "$base_key $inputs_key" | key)"
  local out="$cache/$name-$k.tar"
  image[$name]="$ref"
  archive[$name]="$out"
  [[ -f "$out" ]] && return 0
  log "$name image: buildah bud -f examples/$name/Dockerfile --build-arg NODE_IMAGE=$base_image"
  "${bah[@]}" bud --quiet --isolation chroot --network host --pull=false \
    --build-arg "NODE_IMAGE=$base_image" -f "examples/$name/Dockerfile" -t "$ref" . >&2
  save_archive "$out" "$storage$ref" "$ref"
  "${bah[@]}" rmi "$ref" >/dev/null
}
dockerfile_image reference-controller ghcr.io/klb-project/klb-reference-controller:0.0.0
dockerfile_image reference-daemon ghcr.io/klb-project/klb-reference-daemon:0.0.0
"${bah[@]}" rmi --prune >/dev/null 2>&1 || true

# Archives of earlier inputs are dropped: only the current ones stay cached.
for old in "$cache"/*.tar; do
  keep=false
  for name in "${!archive[@]}"; do [[ "$old" == "${archive[$name]}" ]] && keep=true; done
  $keep || rm -f "$old"
done

{
  echo "{"
  sep=""
  for name in pause echo reference-controller reference-daemon; do
    printf '%s  "%s": {"image": "%s", "archive": "%s"}' "$sep" "$name" "${image[$name]}" "${archive[$name]}"
    sep=$',\n'
  done
  printf '\n}\n'
} > "$cache/images.json"
echo "$cache/images.json"
