// Every public entry point (`exports` minus ./package.json) of every installed @klb package of
// the fresh project release-dry-run.sh makes; none may link back into the repository.
const { readdirSync, readFileSync, realpathSync } = require('node:fs');

const entries = [];
for (const dir of readdirSync('node_modules/@klb')) {
  const path = `node_modules/@klb/${dir}`;
  if (realpathSync(path).includes('/repo/')) throw new Error(`${path} links into the repository`);
  const pkg = JSON.parse(readFileSync(`${path}/package.json`, 'utf8'));
  for (const sub of Object.keys(pkg.exports ?? { '.': {} })) {
    if (sub !== './package.json') entries.push(sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`);
  }
}
if (entries.length === 0) throw new Error('no entry point');
module.exports = entries;
