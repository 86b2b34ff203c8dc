#!/usr/bin/env bash
# The release flow, as a dry run that leaves the working tree untouched: on a throwaway copy of
# the repository, `changeset version` (bumps versions, writes changelogs), build, `npm pack` every
# public package, check each tarball's contents, then act as a new user: `npm init -y` a fresh
# project, install the tarballs with third-party dependencies from the registry, and prove on
# every supported Node line (binaries from the registry's node-linux-<arch> packages, cached in
# $KLB_CACHE_DIR/node) that every entry point loads from ESM and from CommonJS, that a strict
# TypeScript consumer (no skipLibCheck; files in scripts/release-consumer/) compiles under module
# nodenext, node16 and bundler and its compiled CommonJS runs, that the conformance suite runs,
# that `npx klb-testing apiserver` finds the cached kube-apiserver and etcd (and names Go when
# it would have to build without it), and that a controller runs end to end against them; then
# the same with @kubernetes/client-node 2 in place of 1 (the peer range covers both).
# A maintainer's real release is the same steps on the real tree, then `npx changeset publish`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/klb-release-XXXXXX")"
trap 'rm -rf "$work"' EXIT
say() { echo "release: $*"; }

say "copying the repository (tracked and new files) to $work/repo"
mkdir -p "$work/repo" "$work/tarballs" "$work/consumer"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
  | tar --null -T - -cf -) | tar -xf - -C "$work/repo"
# Dependencies: the installed ones, except that @klb/* resolve to the copy's packages.
mkdir -p "$work/repo/node_modules/@klb"
for entry in "$root"/node_modules/* "$root"/node_modules/.bin; do
  [[ "$(basename "$entry")" == "@klb" ]] || ln -s "$entry" "$work/repo/node_modules/$(basename "$entry")"
done
for pkg in "$work"/repo/packages/*/ "$work"/repo/examples/*/; do
  name="$(node -p "require('$pkg/package.json').name")"
  ln -s "$pkg" "$work/repo/node_modules/$name"
done
cd "$work/repo"

say "changeset version"
npx --no-install changeset version >/dev/null

say "building (tsc -b)"
npx --no-install tsc -b tsconfig.json

publics=()
for pkg in packages/*/; do
  private="$(node -p "Boolean(require('./$pkg/package.json').private)")"
  [[ "$private" == "true" ]] && continue
  publics+=("${pkg%/}")
done

for pkg in "${publics[@]}"; do
  tarball="$(cd "$pkg" && npm pack --silent --pack-destination "$work/tarballs" | tail -n 1)"
  listing="$(tar -tzf "$work/tarballs/$tarball")"
  for must in package/package.json package/README.md package/LICENSE package/dist/index.js package/dist/index.d.ts; do
    grep -qx "$must" <<<"$listing" || { say "FAILED: $tarball lacks ${must#package/}"; exit 1; }
  done
  if grep -Eq '^package/(test|bench)/|\.test\.(ts|js)$|tsbuildinfo$' <<<"$listing"; then
    say "FAILED: $tarball contains test files or build state"; exit 1
  fi
  version="$(node -p "require('./$pkg/package.json').version")"
  say "packed $(node -p "require('./$pkg/package.json').name")@$version ($(wc -l <<<"$listing") files)"
done

# The Node lines KLB supports (package.json `engines`): each gets the runtime checks.
node_lines=(22 24 26)
cache="${KLB_CACHE_DIR:-$root/.cache}"
arch="$(node -p 'process.arch')"
node_bins=()
for line in "${node_lines[@]}"; do
  dir="$cache/node/$line"
  if [[ ! -x "$dir/node_modules/node-linux-$arch/bin/node" ]]; then
    say "fetching Node $line (node-linux-$arch@$line from the npm registry)"
    npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "node-linux-$arch@$line" >/dev/null
  fi
  node_bins+=("$dir/node_modules/node-linux-$arch/bin/node")
done

say "a fresh project: npm init -y, then the tarballs, client-node, typescript and @types/node"
cd "$work/consumer"
npm init -y >/dev/null
mapfile -t tarballs < <(ls "$work"/tarballs/*.tgz)
npm install --no-audit --no-fund --prefer-offline --loglevel=error "${tarballs[@]}" \
  '@kubernetes/client-node@^1.4.0' typescript @types/node >/dev/null
say "client-node $(node -p 'require("@kubernetes/client-node/package.json").version'), TypeScript $(npx --no-install tsc --version)"
[[ "$(node -p 'require("./package.json").type ?? "commonjs"')" == "commonjs" ]] || {
  say "FAILED: npm init -y did not make a CommonJS project"
  exit 1
}
cp "$root/scripts/release-consumer/"* .
cp consumer.ts consumer.mts
# Two compilers: the one a new project gets from the registry today, and the repository's own.
for tsc in "$PWD/node_modules/.bin/tsc" "$root/node_modules/.bin/tsc"; do
  tsc_version="$("$tsc" --version)"
  rm -rf out-nodenext
  for mode in nodenext node16 bundler; do
    "$tsc" -p "tsconfig.$mode.json" || { say "FAILED: strict TypeScript ($tsc_version, module $mode, no skipLibCheck)"; exit 1; }
    say "a strict TypeScript consumer compiles: $tsc_version, module $mode, no skipLibCheck"
  done
  grep -q 'require("@klb/core")' out-nodenext/consumer.js || { say "FAILED: $tsc_version did not compile the nodenext consumer to require()"; exit 1; }
done

for bin in "${node_bins[@]}"; do
  v="$("$bin" --version)"
  esm="$("$bin" load-esm.mjs)" || { say "FAILED: ESM import on Node $v"; exit 1; }
  cjs="$("$bin" load-cjs.cjs)" || { say "FAILED: CommonJS require on Node $v"; exit 1; }
  [[ "$esm" == "$cjs" ]] || { say "FAILED: ESM and CommonJS see different exports on Node $v"; diff <(echo "$esm") <(echo "$cjs"); exit 1; }
  "$bin" out-nodenext/consumer.js >/dev/null || { say "FAILED: the compiled CommonJS consumer on Node $v"; exit 1; }
  out="$(NO_COLOR=1 "$bin" conformance.mjs 2>&1)" || { echo "$out"; say "FAILED: the conformance suite on Node $v"; exit 1; }
  say "Node $v: $(wc -l <<<"$esm") entry points load from ESM and CommonJS alike, the compiled CommonJS consumer runs, conformance $(grep -Eo 'Passed: +[0-9]+' <<<"$out" | tr -s ' ')"
done
while read -r spec count; do say "  $spec: $count exports"; done <<<"$esm"

# `npx klb-testing apiserver`: with an empty cache and no Go on PATH it names Go; with the cache
# the repository's set-up built ($KLB_CACHE_DIR), it prints the paths without building.
no_go_path="$(dirname "$(command -v node)"):/usr/bin:/bin"
if out="$(env -u KLB_KUBE_APISERVER KLB_CACHE_DIR="$work/empty-cache" PATH="$no_go_path" npx --no-install klb-testing apiserver 2>&1)"; then
  say "FAILED: klb-testing apiserver succeeded with an empty cache and no Go"
  exit 1
fi
grep -q 'Go toolchain' <<<"$out" || { echo "$out"; say "FAILED: klb-testing apiserver did not name Go"; exit 1; }
say "klb-testing apiserver, empty cache, no Go: ${out#klb-testing: }"
pinned="$(node --input-type=module -e 'import { KUBE_VERSION } from "@klb/testing"; console.log(KUBE_VERSION)')"
if [[ -x "$cache/kube/$pinned/kube-apiserver" ]]; then
  paths="$(env -u KLB_KUBE_APISERVER -u KLB_ETCD KLB_CACHE_DIR="$cache" npx --no-install klb-testing apiserver --no-build)"
  while IFS='=' read -r name path; do
    [[ -x "$path" ]] || { say "FAILED: klb-testing apiserver printed $name=$path, not an executable"; exit 1; }
  done <<<"$paths"
  say "klb-testing apiserver: $(tr '\n' ' ' <<<"$paths")"
  for bin in "${node_bins[@]}"; do
    out="$(env $paths "$bin" controller-e2e.mjs 2>&1)" || { echo "$out"; say "FAILED: the controller end to end on Node $("$bin" --version)"; exit 1; }
    say "Node $("$bin" --version): ${out##*controller e2e: }"
  done
elif [[ "${CI:-}" == "true" ]]; then
  say "FAILED: no kube-apiserver $pinned in $cache (scripts/setup.sh builds it)"
  exit 1
else
  say "skip: klb-testing apiserver with a cache: no kube-apiserver $pinned in $cache (run scripts/setup.sh)"
fi
# The peer range of @kubernetes/client-node covers 1.x (above) and 2.x: the same consumer with
# client-node 2 type-checks in every mode and the controller runs end to end on the newest Node.
npm install --no-audit --no-fund --prefer-offline --loglevel=error '@kubernetes/client-node@^2.0.1' >/dev/null
cn2="$(node -p 'require("@kubernetes/client-node/package.json").version')"
for mode in nodenext node16 bundler; do
  npx --no-install tsc -p "tsconfig.$mode.json" || { say "FAILED: strict TypeScript with client-node $cn2 (module $mode)"; exit 1; }
done
say "client-node $cn2: the strict consumer compiles (nodenext, node16, bundler)"
if [[ -n "${paths:-}" ]]; then
  out="$(env $paths "${node_bins[-1]}" controller-e2e.mjs 2>&1)" || { echo "$out"; say "FAILED: the controller end to end with client-node $cn2"; exit 1; }
  say "client-node $cn2, Node $("${node_bins[-1]}" --version): ${out##*controller e2e: }"
fi
say "dry run passed (${#publics[@]} packages, Node ${node_lines[*]}, client-node 1 and 2)"
