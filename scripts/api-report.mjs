#!/usr/bin/env node
// The public API report of every published package: api-extractor reads each package's built
// declarations (dist/index.d.ts, so run `npm run build` first) and writes its public surface to
// packages/<dir>/api-report/<name>.api.md, which is checked in. A change to a package's public
// surface then shows in review as a change to that file.
//   node scripts/api-report.mjs            check: fails when a report differs from the build
//   node scripts/api-report.mjs --update   rewrite the reports
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = fileURLToPath(new URL('..', import.meta.url));
const update = process.argv.includes('--update');
const temp = mkdtempSync(join(tmpdir(), 'klb-api-report-'));
let failed = 0;
try {
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    const projectFolder = join(root, 'packages', dir);
    const pkg = JSON.parse(readFileSync(join(projectFolder, 'package.json'), 'utf8'));
    if (pkg.private) continue;
    if (update) mkdirSync(join(projectFolder, 'api-report'), { recursive: true });
    const config = ExtractorConfig.prepare({
      configObject: {
        projectFolder,
        mainEntryPointFilePath: '<projectFolder>/dist/index.d.ts',
        compiler: {
          overrideTsconfig: {
            compilerOptions: {
              strict: true,
              target: 'ES2022',
              module: 'NodeNext',
              moduleResolution: 'NodeNext',
              types: ['node'],
              typeRoots: [join(root, 'node_modules/@types')],
              skipLibCheck: true,
            },
            files: ['dist/index.d.ts'],
          },
        },
        apiReport: {
          enabled: true,
          reportFolder: '<projectFolder>/api-report/',
          reportTempFolder: join(temp, dir),
        },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          compilerMessageReporting: { default: { logLevel: 'warning' } },
          extractorMessageReporting: {
            default: { logLevel: 'warning' },
            // Release tags: only @internal is used, to mark plumbing; the rest is public.
            'ae-missing-release-tag': { logLevel: 'none' },
            // Types used by the surface but not exported by name appear in the report as such.
            'ae-forgotten-export': { logLevel: 'none', addToApiReportFile: true },
            // TSDoc completeness and links are typedoc's checks (`npm run docs`).
            'ae-undocumented': { logLevel: 'none' },
            'ae-unresolved-link': { logLevel: 'none' },
            // Internal plumbing keeps its names for now (renaming is a breaking change of its own).
            'ae-internal-missing-underscore': { logLevel: 'none' },
          },
          tsdocMessageReporting: { default: { logLevel: 'none' } },
        },
      },
      configObjectFullPath: undefined,
      packageJsonFullPath: join(projectFolder, 'package.json'),
    });
    const result = Extractor.invoke(config, { localBuild: update, messageCallback: quiet });
    const report = `packages/${dir}/api-report/${config.reportFilePath.split('/').at(-1)}`;
    if (result.succeeded)
      console.log(
        `api-report: ${pkg.name}: ${update && result.apiReportChanged ? 'updated' : 'unchanged'} (${report})`,
      );
    else {
      failed++;
      console.log(
        `api-report: ${pkg.name}: the public surface differs from ${report}; review the change, run` +
          ' `node scripts/api-report.mjs --update`, commit the report and add a changeset',
      );
    }
  }
} finally {
  rmSync(temp, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;

/** Prints warnings and errors in one line each; drops api-extractor's progress chatter. */
function quiet(message) {
  message.handled = true;
  if (message.logLevel === 'warning' || message.logLevel === 'error') {
    if (/^console-api-report-(not-copied|changed|copied|created)$/.test(message.messageId)) return;
    console.log(`api-report: ${message.logLevel}: ${message.formatMessageWithLocation(root)}`);
  }
}
