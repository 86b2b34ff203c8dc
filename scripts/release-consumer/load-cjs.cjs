// Requires every entry point from CommonJS (Node's require of ES modules); prints the same
// lines as load-esm.mjs, which the dry run compares.
for (const spec of require('./entries.cjs')) {
  const names = Object.keys(require(spec)).filter((n) => n !== '__esModule' && n !== 'module.exports');
  if (names.length === 0) throw new Error(`${spec} exports nothing`);
  console.log(`${spec} ${names.length}`);
}
