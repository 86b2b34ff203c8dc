#!/usr/bin/env node
// `npm run bench -- <suite> [args]` runs bench/<suite>.ts with TypeScript run directly (tsx).
// Every figure a suite measures is printed as one line: `bench <suite>.<metric> <value> <unit>`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [suite, ...args] = process.argv.slice(2);
const suites = readdirSync(`${root}bench`)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3));
if (!suite || !existsSync(`${root}bench/${suite}.ts`)) {
  process.stderr.write(`usage: npm run bench -- <suite>\nsuites: ${suites.join(', ') || '(none yet)'}\n`);
  process.exit(2);
}
const res = spawnSync(process.execPath, ['--conditions=klb-source', '--import', 'tsx', `bench/${suite}.ts`, ...args], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(res.status ?? 1);
