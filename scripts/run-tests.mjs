#!/usr/bin/env node
// Runs every uvu suite (packages/*/test, examples/*/test, docs/guides test files) as its own
// Node process with TypeScript run directly through tsx, and ends with one summary line:
//   tests: N passed, N failed, N skipped
// Usage: npm test [-- <substring> ...]   (only files whose path contains one of the substrings)
// Env: KLB_TEST_JOBS (files run at once, default 2), KLB_TEST_TIMEOUT_S (per file, default 1200).
// A file whose first lines contain `klb-test: exclusive` (e.g. the in-cluster suite, which
// changes host-wide state: links, iptables, sysctls) runs alone, after all the others.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);
const jobs = Math.max(1, Number(process.env.KLB_TEST_JOBS ?? 2));
const timeoutMs = Number(process.env.KLB_TEST_TIMEOUT_S ?? 1200) * 1000;

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = ['packages', 'examples', 'docs']
  .flatMap((top) => testFiles(join(root, top)))
  .filter((file) => /\/test\//.test(file))
  .map((file) => relative(root, file))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--conditions=klb-source', '--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Whatever the suite started and left behind (its process group) goes with it.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      const total = lastNumber(output, 'Total:');
      const passed = lastNumber(output, 'Passed:');
      const skipped = lastNumber(output, 'Skipped:') ?? 0;
      let failed = total === undefined || passed === undefined ? 1 : total - passed;
      if (failed === 0 && code !== 0) failed = 1;
      const note = timedOut
        ? `\n!! ${file}: killed after ${timeoutMs / 1000} s\n`
        : total === undefined
          ? `\n!! ${file}: ended without a summary (exit ${code ?? signal})\n`
          : failed > 0 && !/FAIL/.test(output)
            ? `\n!! ${file}: ${failed} test(s) did not run to a pass (a before/after hook failed)\n`
            : '';
      resolve({
        file,
        passed: passed ?? 0,
        failed,
        skipped,
        output: output + note,
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}

function lastNumber(text, label) {
  const matches = [...text.matchAll(new RegExp(`^\\s*${label}\\s+(\\d+)`, 'gm'))];
  const last = matches.at(-1);
  return last ? Number(last[1]) : undefined;
}

const exclusive = (file) => readFileSync(join(root, file), 'utf8').slice(0, 2000).includes('klb-test: exclusive');
const queue = files.filter((file) => !exclusive(file));
const alone = files.filter(exclusive);
const results = [];
async function worker() {
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    const result = await runFile(file);
    results.push(result);
    process.stdout.write(`\n=== ${result.file} (${result.seconds.toFixed(1)} s)\n${result.output.trimEnd()}\n`);
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker));
queue.push(...alone);
await worker();

const sum = (key) => results.reduce((n, r) => n + r[key], 0);
const failedFiles = results.filter((r) => r.failed > 0).map((r) => r.file);
if (failedFiles.length) process.stdout.write(`\nfailed files:\n${failedFiles.map((f) => `  ${f}`).join('\n')}\n`);
if (files.length === 0) process.stdout.write('\nno test files matched\n');
process.stdout.write(`\ntests: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped\n`);
process.exitCode = sum('failed') > 0 || sum('passed') === 0 ? 1 : 0;
