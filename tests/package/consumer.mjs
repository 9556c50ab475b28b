// Consumer test of the npm package: installs dist/reprolab-<version>.tgz into
// a fresh temporary project and uses it the way other people's code would.
//
//   make test-package            (builds the tarball and the CLI first)
//   node tests/package/consumer.mjs
//
// First, mock-engine.mjs: the wrapper's crash handling against a mock engine
// (panic messages reported by the engine, async steps that die). Then, in the
// temporary project (a copy of tests/package/project/, with the tarball,
// vite@7 and typescript@5 installed from npm):
//   1. Node.js 20, ES modules: trains the pinned run of settings.json and
//      compares every hash-chain link with the native CLI's manifest for the
//      same settings (target/release/reprolab train --config settings.json);
//   2. Node.js: api.mjs, every part of the API with assertions: metrics,
//      pause/resume/cancel, checkpoint/resume, replay, diff, rerun, invalid
//      configurations rejecting with the field named, a forced panic;
//   3. every ```js example of the package's README, as shipped, in Node.js;
//   4. tsc --noEmit of example.ts against the shipped types (bundler
//      resolution with the DOM, Node16 resolution without);
//   5. vite build of index.html + page.js, served on 127.0.0.1 to headless
//      Chromium with WebGPU: a run on WebGPU, one on the CPU (the CLI's hash
//      chain), one with 3 Web Workers (the CLI's hash chain), one on auto,
//      invalid settings and a panic; the backend each used is printed.
// Any console error or warning the page prints (other than the panic's own
// message), any uncaught page error or failed request fails the test.
// Exit code 0 on success, 1 on any failure.

import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROJECT = path.join(ROOT, 'tests/package/project');
const CLI = path.join(ROOT, 'target/release/reprolab');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const BROWSER_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const WHOLE_TEST_MS = 300_000;
const KEEP = process.env.KEEP_CONSUMER === '1'; // keep the temporary project, for debugging

class Failure extends Error {}

const check = (ok, message) => {
  if (!ok) throw new Failure(message);
};
const log = (message) => console.log(`package: ${message}`);
const rel = (p) => path.relative(ROOT, p);

// Runs a command; resolves to its stdout; a failure shows its output.
function sh(command, args, { cwd, timeout = 120_000, echo = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.stdout.on('data', (d) => {
      out += d;
      if (echo) process.stdout.write(d);
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Failure(`could not run ${command}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else {
        const shown = echo ? err : `${out}${err}`;
        reject(new Failure(`${command} ${args.join(' ')} (in ${cwd}) failed (${signal ?? `exit ${code}`}):\n${shown.trim()}`));
      }
    });
  });
}

async function version() {
  const cargo = await readFile(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const v = cargo.match(/^\[package\][^[]*?^version\s*=\s*"([^"]+)"/m)?.[1];
  check(v, 'no [package] version in Cargo.toml');
  return v;
}

// The code blocks of the README whose info string is exactly `js`: each is a
// self-contained ES module that runs in Node.js.
function readmeExamples(markdown) {
  const blocks = [];
  const re = /^```js\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) {
    const before = markdown.slice(0, m.index);
    const heading = [...before.matchAll(/^#+ (.+)$/gm)].at(-1)?.[1] ?? '(top)';
    blocks.push({ heading, code: m[1], line: before.split('\n').length });
  }
  return blocks;
}

// A static server for Vite's dist/, with the types browsers insist on.
function serve(dir) {
  const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const file = path.join(dir, url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname));
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// The native CLI's manifest for a config file (and extra --set pairs).
async function cliManifest(dir, name, config, sets = []) {
  const out = path.join(dir, `${name}.json`);
  const args = ['train', '--backend', 'cpu', '--config', config, ...sets.flatMap((s) => ['--set', s]), '--quiet', '--out', out];
  await sh(CLI, args, { cwd: dir, timeout: 60_000 });
  return JSON.parse(await readFile(out, 'utf8'));
}

function firstMismatch(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `first mismatch at step ${i + 1}: CLI ${a[i] ?? '(none)'}, page ${b[i] ?? '(none)'}`;
  }
  return null;
}

let browser;
let server;

async function browserChecks(dir, settings, cli, cliThreaded) {
  server = await serve(path.join(dir, 'dist'));
  const origin = `http://127.0.0.1:${server.address().port}`;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  } catch (e) {
    throw new Failure(`could not launch ${CHROMIUM}: ${e.message.split('\n')[0]}`);
  }
  const page = await browser.newPage();
  const problems = [];
  let panicking = false;
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    // The engine's panic hook logs the deliberate panic: expected then only.
    if (panicking && msg.type() === 'error' && msg.text().includes('debugPanic')) return;
    const where = msg.location()?.url ? ` (${msg.location().url})` : '';
    problems.push(`console ${msg.type()}: ${msg.text()}${where}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) problems.push(`request to another origin: ${r.url()}`);
  });

  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 30_000 });
  log(`Vite page loaded in Chromium (${await page.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0])}), engine: ${await page.evaluate(() => window.consumer.engineVersion())}`);

  const train = (config, options) => page.evaluate(([c, o]) => window.consumer.train(c, o), [config, options]);

  // WebGPU, strict.
  const gpuSettings = { ...settings, steps: 60 };
  const gpu = await train(gpuSettings, { backend: 'gpu' });
  check(gpu.backend === 'gpu' && gpu.manifestBackend === 'gpu', `backend gpu trained on ${gpu.backend}: ${gpu.backendReason}`);
  check(gpu.hashChain.length === 60, `the GPU run has ${gpu.hashChain.length} links, expected 60`);
  const name = [gpu.adapter?.vendor, gpu.adapter?.architecture, gpu.adapter?.description].filter(Boolean).join(' ') || '(withheld)';
  log(`browser, backend gpu: trained 60 steps on the GPU in ${gpu.ms} ms (${gpu.reports} reports), adapter ${name}, ${gpu.adapter?.graphicsBackend}; reason "${gpu.backendReason}"`);
  const gpuAgain = await train(gpuSettings, { backend: 'gpu' });
  check(!firstMismatch(gpu.hashChain, gpuAgain.hashChain), `two pinned WebGPU runs differ: ${firstMismatch(gpu.hashChain, gpuAgain.hashChain)}`);
  log('browser, backend gpu: a second pinned run gives the same 60 links');

  // The CPU: the native CLI's bits.
  const cpu = await train(settings, { backend: 'cpu' });
  check(cpu.backend === 'cpu' && cpu.workers === null, `backend cpu trained on ${cpu.backend} (workers ${JSON.stringify(cpu.workers)})`);
  const cpuMismatch = firstMismatch(cli.hash_chain, cpu.hashChain);
  check(!cpuMismatch, `the page's CPU run differs from the native CLI: ${cpuMismatch}`);
  log(`browser, backend cpu: trained ${settings.steps} steps on the CPU in ${cpu.ms} ms; all ${cpu.hashChain.length} links equal the native CLI's; reason "${cpu.backendReason}"`);

  // The CPU with 3 Web Workers (bundled by Vite): the CLI's bits again.
  const threaded = await train({ ...settings, threads: 3, chunks: 6, steps: 60 }, { backend: 'cpu' });
  check(threaded.workers?.size === 3 && threaded.workers?.chunks === 6, `expected 3 Web Workers on 6 chunks, got ${JSON.stringify(threaded.workers)}`);
  check(threaded.arrivalOrder === false, 'a pinned threaded run combines in arrival order');
  const threadedMismatch = firstMismatch(cliThreaded.hash_chain, threaded.hashChain);
  check(!threadedMismatch, `3 Web Workers differ from the native CLI's 3 threads: ${threadedMismatch}`);
  log(`browser, backend cpu, threads 3, chunks 6: 3 Web Workers; all 60 links equal the native CLI's (${threaded.ms} ms)`);

  // auto: whatever this browser offers, and why.
  const auto = await train({ ...settings, steps: 20 }, { backend: 'auto' });
  log(`browser, backend auto: trained on the ${auto.backend.toUpperCase()}; reason "${auto.backendReason}"`);

  // Invalid settings: the field named.
  for (const [config, options, field] of [
    [{ learning_rate: -1 }, undefined, 'learning_rate'],
    [{ hidden: 'wide' }, undefined, 'hidden'],
    [{ steps: true }, undefined, 'steps'],
    [{ batch_size: 1e9 }, undefined, 'batch_size'],
    [{}, { free: ['nothing'] }, 'free'],
  ]) {
    const e = await page.evaluate(([c, o]) => window.consumer.invalid(c, o), [config, options]);
    check(e && e.name === 'ConfigError' && e.field === field, `${JSON.stringify(config)} ${JSON.stringify(options)}: expected a ConfigError naming ${field}, got ${JSON.stringify(e)}`);
  }
  log('browser: 5 invalid configurations reject with a ConfigError naming the field');

  // A panic: a clear error, refusing objects, a working next run.
  panicking = true;
  const panic = await page.evaluate((c) => window.consumer.panic(c), { ...settings, steps: 40 });
  panicking = false;
  check(panic.crash?.isCrashError && /^reprolab: the engine crashed \(.+\); create a new run$/.test(panic.crash.message), `debugPanic in the page gave ${JSON.stringify(panic.crash)}`);
  check(panic.refused?.name === 'EngineCrashError' && /crashed earlier/.test(panic.refused.message), `a run of the crashed instance gave ${JSON.stringify(panic.refused)}`);
  for (const text of [panic.crash.message, panic.refused.message]) {
    check(!/unreachable|recursive use of an object/i.test(text), `a message shows the engine's internals: "${text}"`);
  }
  check(!firstMismatch(cli.hash_chain.slice(0, 40), panic.after.hashChain), 'the run after the panic differs from the CLI');
  log(`browser: a panic reads "${panic.crash.message}"; the old run refuses; the next createRun trains (40 links equal the CLI's)`);

  check(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
}

async function main() {
  const v = await version();
  const tarball = path.join(ROOT, `dist/reprolab-${v}.tgz`);
  const inDist = (await readdir(path.join(ROOT, 'dist')).catch(() => [])).filter((f) => f.endsWith('.tgz'));
  check(inDist.length === 1 && inDist[0] === `reprolab-${v}.tgz`, `dist/ should hold exactly reprolab-${v}.tgz, holds: ${inDist.join(', ') || 'nothing'} (make package)`);
  await readFile(CLI).catch(() => {
    throw new Failure(`${rel(CLI)} is missing: build it with \`cargo build --release\` (make test-package does)`);
  });

  const dir = await mkdtemp(path.join(os.tmpdir(), 'reprolab-consumer-'));
  try {
    await cp(PROJECT, dir, { recursive: true });
    let t0 = performance.now();
    await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, 'vite@7', 'typescript@5'], { cwd: dir, timeout: 240_000 });
    const installed = JSON.parse(await readFile(path.join(dir, 'node_modules/reprolab/package.json'), 'utf8'));
    check(installed.name === 'reprolab' && installed.version === v, `installed ${installed.name}@${installed.version}, expected reprolab@${v}`);
    log(`installed ${rel(tarball)} with vite@7 and typescript@5 into a fresh project (${dir}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // 0. The wrapper's crash handling, against a mock engine.
    process.stdout.write(await sh('node', [path.join(ROOT, 'tests/package/mock-engine.mjs')], { cwd: ROOT }));

    // 1. Node.js: the native CLI's hash chain.
    const settings = JSON.parse(await readFile(path.join(dir, 'settings.json'), 'utf8'));
    const cli = await cliManifest(dir, 'cli', 'settings.json');
    const cliThreaded = await cliManifest(dir, 'cli-threaded', 'settings.json', ['threads=3', 'chunks=6', 'steps=60']);
    process.stdout.write(await sh('node', ['hash-chain.mjs', 'cli.json'], { cwd: dir }));

    // 2. Node.js: the whole API, invalid configurations and a panic.
    t0 = performance.now();
    const api = await sh('node', ['api.mjs'], { cwd: dir });
    process.stdout.write(api);
    log(`api.mjs passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // 3. The README's examples, as shipped.
    const readme = await readFile(path.join(dir, 'node_modules/reprolab/README.md'), 'utf8');
    const examples = readmeExamples(readme);
    check(examples.length >= 8, `the package README has ${examples.length} runnable \`\`\`js examples, expected one per feature`);
    t0 = performance.now();
    for (const [i, ex] of examples.entries()) {
      const file = path.join(dir, `readme-${String(i + 1).padStart(2, '0')}.mjs`);
      await writeFile(file, ex.code);
      try {
        await sh('node', [path.basename(file)], { cwd: dir, timeout: 60_000 });
      } catch (e) {
        throw new Failure(`README example ${i + 1} (line ${ex.line}, under "${ex.heading}") failed:\n${e.message}`);
      }
    }
    log(`all ${examples.length} \`\`\`js examples of the package README ran in Node.js (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

    // 4. The types.
    for (const config of ['tsconfig.json', 'tsconfig.node.json']) {
      await sh(path.join(dir, 'node_modules/.bin/tsc'), ['--noEmit', '-p', config], { cwd: dir });
    }
    log('tsc --noEmit of example.ts against the shipped types: bundler + DOM and Node16 without DOM both pass (and the 8 deliberate mistakes are errors)');

    // 5. A page built by Vite, in headless Chromium.
    t0 = performance.now();
    await sh(path.join(dir, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: dir });
    const assets = await readdir(path.join(dir, 'dist/assets'));
    check(assets.some((f) => f.endsWith('.wasm')), `vite build emitted no .wasm: ${assets.join(', ')}`);
    check(assets.some((f) => f.startsWith('chunk-worker')), `vite build emitted no worker: ${assets.join(', ')}`);
    log(`vite build: ${assets.join(', ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    await browserChecks(dir, settings, cli, cliThreaded);
  } finally {
    if (KEEP) log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

// However node ends, the server and browser go with it.
const watchdog = setTimeout(() => {
  console.error(`package: FAILED: gave up after ${WHOLE_TEST_MS / 1000} s`);
  browser?.process()?.kill('SIGKILL');
  process.exit(1);
}, WHOLE_TEST_MS);

let code = 0;
const began = performance.now();
try {
  await main();
  log(`passed in ${((performance.now() - began) / 1000).toFixed(0)} s`);
} catch (e) {
  console.error(`package: FAILED: ${e instanceof Failure ? e.message : e.stack}`);
  code = 1;
} finally {
  await browser?.close().catch(() => {});
  server?.close();
  clearTimeout(watchdog);
}
process.exit(code);
