// Assembles the npm package and packs it: `make package` runs it after
// building the wasm (make build-web) and its glue (wasm-bindgen with a reset
// function, into STAGE/pkg/).
//
//   node scripts/package.mjs STAGE      e.g. target/npm/reprolab
//
// Copies the wrapper (js/), its types and its README into STAGE, rewrites the
// wrapper's imports of the page's glue ('../www/pkg/') to the package's
// ('./pkg/'), writes package.json (name reprolab, version from Cargo.toml),
// checks what it ships, packs exactly one tarball, dist/reprolab-VERSION.tgz,
// and prints the package's size: the wasm and the JavaScript, raw and gzip.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DIST = path.join(ROOT, 'dist');

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

const stage = process.argv[2] ? path.resolve(process.argv[2]) : fail('usage: node scripts/package.mjs STAGE');

// The crate's version: the first `version = "..."` of [package] in Cargo.toml.
const cargo = readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
const version = cargo.match(/^\[package\][^[]*?^version\s*=\s*"([^"]+)"/m)?.[1] ?? fail('no [package] version in Cargo.toml');
const description = cargo.match(/^\[package\][^[]*?^description\s*=\s*"([^"]+)"/m)?.[1] ?? '';
const license = cargo.match(/^\[package\][^[]*?^license\s*=\s*"([^"]+)"/m)?.[1] ?? 'UNLICENSED';

// The glue, built by the Makefile with --experimental-reset-state-function,
// so that the wrapper can start a fresh instance after a panic.
const glue = readFileSync(path.join(stage, 'pkg/reprolab.js'), 'utf8');
if (!/export\s*\{[^}]*__wbg_reset_state/.test(glue) && !/export function __wbg_reset_state/.test(glue)) {
  fail(`${path.join(stage, 'pkg/reprolab.js')} has no __wbg_reset_state export: build it with wasm-bindgen --experimental-reset-state-function`);
}
// The package ships the very wasm the page runs.
const wasm = readFileSync(path.join(stage, 'pkg/reprolab_bg.wasm'));
const pageWasm = readFileSync(path.join(ROOT, 'www/pkg/reprolab_bg.wasm'));
if (!wasm.equals(pageWasm)) fail("the package's wasm differs from www/pkg/reprolab_bg.wasm: run make build-web and make package again");

// The wrapper: every module of js/ (the same files the repository's tests
// import), the glue's path rewritten; not threaded.js, the API over the
// WebAssembly-threads build, which the package does not ship (js/README.md).
const WRAPPER = readdirSync(path.join(ROOT, 'js'))
  .filter((f) => f.endsWith('.js') && f !== 'threaded.js')
  .sort();
for (const entry of ['index.js', 'node.js', 'core.js', 'chunk-worker.js']) {
  if (!WRAPPER.includes(entry)) fail(`js/${entry} is missing`);
}
for (const file of WRAPPER) {
  const text = readFileSync(path.join(ROOT, 'js', file), 'utf8');
  const out = text.replaceAll("'../www/pkg/", "'./pkg/");
  if (/['"`]\.\.\/www\/pkg/.test(out)) fail(`js/${file}: a path into www/pkg/ that the rewrite does not cover`);
  writeFileSync(path.join(stage, file), out);
}
copyFileSync(path.join(ROOT, 'js/index.d.ts'), path.join(stage, 'index.d.ts'));
copyFileSync(path.join(ROOT, 'js/README.md'), path.join(stage, 'README.md'));

const manifest = {
  name: 'reprolab',
  version,
  description,
  license,
  type: 'module',
  keywords: ['machine-learning', 'reproducibility', 'determinism', 'webgpu', 'webassembly', 'mlp'],
  // Node.js reads the wasm from disk (its fetch cannot read file: URLs);
  // browsers and bundlers fetch it from next to the glue.
  exports: {
    '.': {
      types: './index.d.ts',
      node: './node.js',
      browser: './index.js',
      default: './index.js',
    },
    './reprolab_bg.wasm': './pkg/reprolab_bg.wasm',
    './package.json': './package.json',
  },
  main: './node.js',
  module: './index.js',
  browser: './index.js',
  types: './index.d.ts',
  files: [...WRAPPER, 'index.d.ts', 'pkg/reprolab.js', 'pkg/reprolab_bg.wasm'],
  sideEffects: ['./chunk-worker.js'],
  engines: { node: '>=20' },
};
writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

// Exactly one tarball in dist/.
mkdirSync(DIST, { recursive: true });
for (const old of readdirSync(DIST)) if (/^reprolab-.*\.tgz$/.test(old)) rmSync(path.join(DIST, old));
const packed = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', DIST], { cwd: stage, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
)[0];
const tarball = path.join(DIST, packed.filename);
if (packed.filename !== `reprolab-${version}.tgz`) fail(`npm pack wrote ${packed.filename}, expected reprolab-${version}.tgz`);

// Sizes: what a page downloads (the wasm, the JavaScript), raw and gzip.
const size = (files) => {
  const bytes = files.map((f) => readFileSync(path.join(stage, f)));
  const raw = bytes.reduce((n, b) => n + b.length, 0);
  const gz = bytes.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
  return { raw, gz };
};
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const line = (label, { raw, gz }) => console.log(`  ${label.padEnd(44)} ${kib(raw).padStart(11)} raw ${kib(gz).padStart(11)} gzip`);
const js = size([...WRAPPER, 'pkg/reprolab.js']);
const wasmSize = size(['pkg/reprolab_bg.wasm']);
console.log(`package: ${path.relative(ROOT, tarball)} (${packed.name} ${packed.version}, ${packed.entryCount} files)`);
line('wasm (pkg/reprolab_bg.wasm)', wasmSize);
line(`JavaScript (wrapper + glue, ${WRAPPER.length + 1} files)`, js);
line('  of which the glue (pkg/reprolab.js)', size(['pkg/reprolab.js']));
line('types (index.d.ts)', size(['index.d.ts']));
line('wasm + JavaScript', { raw: wasmSize.raw + js.raw, gz: wasmSize.gz + js.gz });
console.log(`  ${'tarball'.padEnd(44)} ${kib(statSync(tarball).size).padStart(11)}`);
