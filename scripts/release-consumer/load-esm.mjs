// Imports every entry point from an ES module; prints `<entry> <number of exports>` per line.
import { createRequire } from 'node:module';

const entries = createRequire(import.meta.url)('./entries.cjs');
for (const spec of entries) {
  const names = Object.keys(await import(spec));
  if (names.length === 0) throw new Error(`${spec} exports nothing`);
  console.log(`${spec} ${names.length}`);
}
