// Copies the page's third-party browser files from node_modules (installed by
// `npm install` from package.json / package-lock.json) into www/vendor/, so
// that the page loads them from its own origin: no CDN.
//
//   node scripts/vendor.mjs          copy (after npm install or an upgrade)
//   node scripts/vendor.mjs --check  exit 1 if www/vendor/ differs from node_modules
//
// www/vendor/ is committed, so `make demo` serves a working page without npm.

import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const VENDOR = path.join(ROOT, 'www/vendor');

// [package, file in the package, name in www/vendor/]
const FILES = [
  ['uplot', 'dist/uPlot.esm.js', 'uPlot.esm.js'],
  ['uplot', 'dist/uPlot.min.css', 'uPlot.min.css'],
  ['uplot', 'LICENSE', 'uPlot.LICENSE.txt'],
];

const check = process.argv.includes('--check');
const versions = {};
let stale = 0;
await mkdir(VENDOR, { recursive: true });
for (const [pkg, from, to] of FILES) {
  const src = path.join(ROOT, 'node_modules', pkg, from);
  const dst = path.join(VENDOR, to);
  versions[pkg] = JSON.parse(await readFile(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  if (check) {
    const [a, b] = await Promise.all([readFile(src), readFile(dst).catch(() => null)]);
    if (!b || !a.equals(b)) {
      console.error(`vendor: www/vendor/${to} differs from node_modules/${pkg}/${from}: run node scripts/vendor.mjs`);
      stale += 1;
    }
  } else {
    await copyFile(src, dst);
  }
}
const manifest = `${JSON.stringify(versions, null, 2)}\n`;
if (check) {
  const old = await readFile(path.join(VENDOR, 'VERSIONS.json'), 'utf8').catch(() => '');
  if (old !== manifest) {
    console.error('vendor: www/vendor/VERSIONS.json is stale: run node scripts/vendor.mjs');
    stale += 1;
  }
  process.exit(stale ? 1 : 0);
}
await writeFile(path.join(VENDOR, 'VERSIONS.json'), manifest);
console.log(`vendor: copied ${FILES.length} files into www/vendor/ (${Object.entries(versions).map(([p, v]) => `${p} ${v}`).join(', ')})`);
