#!/usr/bin/env bash
# The release flow, as a dry run that leaves the working tree untouched: on a throwaway copy of
# the repository, `changeset version` (bumps versions, writes changelogs), build, `npm pack` every
# public package, check each tarball's contents, install the tarballs into a clean temporary
# project (third-party dependencies from the registry), import every public entry point and
# type-check a consumer against the published declarations.
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

say "installing the tarballs into a clean project"
cd "$work/consumer"
node -e '
  const fs = require("fs");
  const deps = {};
  for (const t of fs.readdirSync(process.argv[1])) {
    const name = "@klb/" + t.replace(/^klb-/, "").replace(/-\d+\.\d+\.\d+.*\.tgz$/, "");
    deps[name] = "file:" + process.argv[1] + "/" + t;
  }
  fs.writeFileSync("package.json", JSON.stringify({ name: "klb-consumer", private: true, type: "module", dependencies: deps }, null, 2));
' "$work/tarballs"
npm install --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null

cat >check.mjs <<'EOF'
// Imports every public entry point of every installed @klb package (its `exports`, minus
// ./package.json) and checks that each has exports and that no path leaks into the repository.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
let count = 0;
for (const dir of readdirSync('node_modules/@klb')) {
  const path = `node_modules/@klb/${dir}`;
  if (realpathSync(path).includes('/repo/')) throw new Error(`${path} links into the repository`);
  const pkg = JSON.parse(readFileSync(`${path}/package.json`, 'utf8'));
  for (const sub of Object.keys(pkg.exports ?? { '.': {} })) {
    if (sub === './package.json') continue;
    const spec = sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`;
    const mod = await import(spec);
    const names = Object.keys(mod);
    if (names.length === 0) throw new Error(`${spec} exports nothing`);
    console.log(`release: imported ${spec}@${pkg.version} (${names.length} exports)`);
    count++;
  }
}
if (count === 0) throw new Error('no entry point imported');
EOF
node check.mjs

# A strict NodeNext consumer resolves every package's published declarations (third-party
# declaration files are not checked: isomorphic-ws, a client-node dependency, lacks @types/ws).
node -e '
  const fs = require("fs");
  const names = Object.keys(require("./package.json").dependencies);
  fs.writeFileSync("check-types.ts", names.map((n, i) => `import * as m${i} from "${n}";\nexport const e${i} = Object.keys(m${i});`).join("\n") + "\n");
  fs.writeFileSync("tsconfig.json", JSON.stringify({ compilerOptions: { strict: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", noEmit: true, skipLibCheck: true, types: ["node"], typeRoots: [process.argv[1] + "/node_modules/@types"] }, files: ["check-types.ts"] }));
' "$root"
"$root/node_modules/.bin/tsc" -p tsconfig.json
say "a strict TypeScript consumer resolves the published declarations"
say "dry run passed (${#publics[@]} packages)"
