// Consumer test of the npm package: installs dist/reprolab-<version>.tgz into
// a fresh temporary project and uses it the way other people's code would.
//
//   make test-package            (builds the tarball and the CLI first)
//   node tests/package/consumer.mjs
//
// First, mock-engine.mjs: the wrapper's crash handling against a mock engine
// (panic messages reported by the engine, async steps and async exports that
// die in a microtask). Then, in the temporary project (a copy of
// tests/package/project/, with the tarball, vite@7, typescript@5 and
// @types/node@20 installed from npm):
//   1. Node.js 20, ES modules: trains the pinned run of settings.json and
//      compares every hash-chain link with the native CLI's manifest for the
//      same settings; diff() of the two says identical results, with the
//      environment apart (hash-chain.mjs); under --expose-gc, the JS heap
//      stays flat over 100k step(1) calls and RSS over 200 runs dropped
//      without dispose() (gc.mjs); a wasm that does not compile is an
//      EngineLoadError (load-error.mjs);
//   2. Node.js: api.mjs, every part of the API with assertions: metrics,
//      pause/resume/cancel, AbortSignals, error codes, checkpoint/resume,
//      replay (of a CLI GPU record too: not comparable here, and why), diff,
//      rerun, invalid configurations rejecting with the field named, a
//      forced panic;
//   3. every ```js example of the package's README, as shipped, in Node.js
//      (the "Pause, resume and cancel" one's output checked);
//   4. tsc --strict --noEmit of example.ts against the shipped types
//      (bundler resolution with the DOM, Node16 resolution without), and of
//      every ```js and ```ts example of the README, as TypeScript;
//   5. vite build of index.html + page.js, served on 127.0.0.1 to headless
//      Chromium (WebGPU on) and Firefox: init({ workers: 3 }) fetches the
//      wasm once; then, with nothing fetched (Chromium offline), a CPU run
//      and two 3-Web-Worker runs (the CLI's hash chains), timers and frames
//      during a CPU train() (a 20 ms setTimeout and a 50 ms setInterval fire
//      mid-run, and the third tick's cancel() ends it), an AbortSignal (no
//      step after the abort), invalid settings, a panic; the README's pause
//      example; on WebGPU (Chromium), two pinned runs and a replay on the GPU.
// Any console error or warning the page prints (other than the panic's own
// message), any uncaught page error or failed request fails the test.
// Exit code 0 on success, 1 on any failure.

import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROJECT = path.join(ROOT, 'tests/package/project');
const CLI = path.join(ROOT, 'target/release/reprolab');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
const BROWSER_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const WHOLE_TEST_MS = 900_000;
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

// A static server for Vite's dist/, with the types browsers insist on. It
// counts the requests it answers, by path, so that a test can say what a
// page fetched and when.
function serve(dir) {
  const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push(url.pathname);
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
  server.requests = requests;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// The native CLI's manifest for a config file (and extra --set pairs).
async function cliManifest(dir, name, config, sets = [], backend = 'cpu') {
  const out = path.join(dir, `${name}.json`);
  const args = ['train', '--backend', backend, '--config', config, ...sets.flatMap((s) => ['--set', s]), '--quiet', '--out', out];
  await sh(CLI, args, { cwd: dir, timeout: 120_000 });
  return JSON.parse(await readFile(out, 'utf8'));
}

function firstMismatch(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `first mismatch at step ${i + 1}: CLI ${a[i] ?? '(none)'}, page ${b[i] ?? '(none)'}`;
  }
  return null;
}

// The README's "Pause, resume and cancel" example prints four lines; they
// must say that the run paused (no step while paused), was cancelled short
// of the end, refused a step, and kept its record. All of it is driven by
// timers while the run trains: timers starved by training would let the run
// finish its 5000 steps first.
function checkPauseExample(lines, where) {
  const text = lines.join(' | ');
  const paused = lines[0]?.match(/^paused at step (\d+), still at (\d+) 50 ms later$/);
  check(paused, `${where}: the pause example printed "${text}"; expected "paused at step N, still at N 50 ms later" first`);
  const [at, still] = [Number(paused[1]), Number(paused[2])];
  check(at === still, `${where}: the pause example's run moved while paused (${text})`);
  const cancelled = lines[1]?.match(/^cancelled (\d+)$/);
  check(cancelled && Number(cancelled[1]) >= at && Number(cancelled[1]) < 5000, `${where}: after resume() and cancel() the example printed "${lines[1]}" (paused at ${at})`);
  check(lines[2] === 'cancelled' && lines[3] === 'true', `${where}: the example's last lines were "${lines.slice(2).join(' | ')}"`);
  return `paused at step ${at} and held, cancelled at step ${cancelled[1]} of 5000`;
}

// One driver over playwright-core (Chromium) and puppeteer-core (Firefox,
// over WebDriver BiDi).
async function launch(name) {
  if (name === 'chromium') {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS }).catch((e) => {
      throw new Failure(`could not launch ${CHROMIUM}: ${e.message.split('\n')[0]}`);
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    return {
      name,
      close: () => browser.close(),
      kill: () => browser.process()?.kill('SIGKILL'),
      onConsole: (fn) => page.on('console', (m) => fn(m.type(), m.text(), m.location()?.url)),
      onError: (fn) => page.on('pageerror', (e) => fn(e.message)),
      onFailed: (fn) => page.on('requestfailed', (r) => fn(r.url(), r.failure()?.errorText)),
      goto: (url) => page.goto(url),
      evaluate: (fn, arg) => page.evaluate(fn, arg),
      waitFor: (fn, timeout) => page.waitForFunction(fn, null, { timeout, polling: 100 }),
      setOffline: (offline) => context.setOffline(offline),
      version: () => page.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0]),
    };
  }
  const puppeteer = (await import('puppeteer-core')).default;
  const browser = await puppeteer
    .launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      protocol: 'webDriverBiDi',
      extraPrefsFirefox: { 'dom.webgpu.enabled': false },
    })
    .catch((e) => {
      throw new Failure(`could not launch ${FIREFOX}: ${e.message.split('\n')[0]}`);
    });
  const page = await browser.newPage();
  return {
    name,
    close: () => browser.close(),
    kill: () => browser.process()?.kill('SIGKILL'),
    onConsole: (fn) => page.on('console', (m) => fn(m.type() === 'warn' ? 'warning' : m.type(), m.text(), m.location()?.url)),
    onError: (fn) => page.on('pageerror', (e) => fn(e.message)),
    onFailed: (fn) => page.on('requestfailed', (r) => fn(r.url(), r.failure()?.errorText)),
    goto: (url) => page.goto(url),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    waitFor: (fn, timeout) => page.waitForFunction(fn, { timeout, polling: 100 }),
    setOffline: null,
    version: () => page.evaluate(() => navigator.userAgent.match(/Firefox\/[\d.]+/)?.[0]),
  };
}

const browsers = new Set();
let server;

async function browserChecks(name, settings, cli, cliThreaded) {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const d = await launch(name);
  browsers.add(d);
  const problems = [];
  const consoleLines = [];
  let panicking = false;
  d.onConsole((type, text, url) => {
    if (type === 'log') consoleLines.push(text);
    if (type !== 'error' && type !== 'warning') return;
    // The engine's panic hook logs the deliberate panic: expected then only.
    if (panicking && type === 'error' && /debugPanic|panicked at|^Stack:|^Error$/.test(text)) return;
    problems.push(`console ${type}: ${text}${url ? ` (${url})` : ''}`);
  });
  d.onError((message) => problems.push(`uncaught page error: ${message}`));
  d.onFailed((url, why) => problems.push(`request failed: ${url} (${why})`));
  const at = (label) => `${name}, ${label}`;
  const say = (label, message) => log(`${at(label)}: ${message}`);
  const evaluate = (fn, ...args) => d.evaluate(fn, args);

  // Start-up: init({ workers: 3 }) loads the engine and starts 3 warm Web Workers.
  server.requests.length = 0;
  await d.goto(`${origin}/`);
  await d.waitFor(() => ['ready', 'error'].includes(document.body.dataset.state), 60_000);
  const startError = await evaluate(() => document.body.dataset.error ?? null);
  check(!startError, `${name}: the page's init() failed: ${startError}`);
  const wasmFetches = () => server.requests.filter((p) => p.endsWith('.wasm')).length;
  const workerFetches = () => server.requests.filter((p) => /chunk-worker/.test(p)).length;
  say('start-up', `Vite page ready (${await d.version()}), engine ${await evaluate(() => window.consumer.engineVersion())}; init({ workers: 3 }) fetched the wasm ${wasmFetches()} time(s) and the worker script ${workerFetches()} time(s)`);
  check(wasmFetches() === 1, `${name}: the page fetched the wasm ${wasmFetches()} times during init() with 3 warm workers (expected once: the workers get the compiled module)`);

  // ---- after init(): no request at all (Chromium: offline) -------------------
  const fetchedBefore = server.requests.length;
  if (d.setOffline) await d.setOffline(true);
  const offline = d.setOffline ? 'offline' : 'no request';

  const train = (config, options) => evaluate(([c, o]) => window.consumer.train(c, o), config, options);

  // The CPU: the native CLI's bits.
  const cpu = await train(settings, { backend: 'cpu' });
  check(cpu.backend === 'cpu' && cpu.workers === null, `backend cpu trained on ${cpu.backend} (workers ${JSON.stringify(cpu.workers)})`);
  const cpuMismatch = firstMismatch(cli.hash_chain, cpu.hashChain);
  check(!cpuMismatch, `${name}: the page's CPU run differs from the native CLI: ${cpuMismatch}`);
  check(cpu.backendDecision.kind === 'requested' && cpu.backendReason !== 'backend cpu', `backend cpu: decision ${JSON.stringify(cpu.backendDecision)}`);
  say(offline, `backend cpu: ${settings.steps} steps in ${cpu.ms} ms; all ${cpu.hashChain.length} links equal the native CLI's; reason "${cpu.backendReason}"`);

  // The CPU with 3 threads (2 of the warm Web Workers and the run's own): the CLI's bits again, twice.
  for (const round of [1, 2]) {
    const threaded = await train({ ...settings, threads: 3, chunks: 6, steps: 60 }, { backend: 'cpu' });
    check(threaded.workers?.size === 2 && threaded.workers?.threads === 3 && threaded.workers?.chunks === 6, `expected 3 threads (2 Web Workers and the run's own) on 6 chunks, got ${JSON.stringify(threaded.workers)}`);
    check(threaded.arrivalOrder === false, 'a pinned threaded run combines in arrival order');
    const threadedMismatch = firstMismatch(cliThreaded.hash_chain, threaded.hashChain);
    check(!threadedMismatch, `${name}: 3 threads (2 Web Workers) differ from the native CLI's 3 threads: ${threadedMismatch}`);
    say(offline, `threads 3, chunks 6, run ${round}: 2 Web Workers and the run's thread; all 60 links equal the native CLI's (${threaded.ms} ms)`);
  }

  // Timers, frames and cancel during a CPU train(): the default chunks, and one chunk of the whole run.
  for (const options of [{}, { every: 3000 }]) {
    const t = await evaluate(([c, o]) => window.consumer.timers(c, o), { ...settings, steps: 3000, eval_every: 50 }, options);
    const label = `train(${JSON.stringify(options)})`;
    check(t.timeout && t.timeout.state === 'running' && t.timeout.step < t.total, `${name}, ${label}: a 20 ms setTimeout fired at ${JSON.stringify(t.timeout)} (the run ${t.state} at ${t.steps} of ${t.total})`);
    check(t.ticks.length === 3 && t.ticks.every((k) => k.state === 'running'), `${name}, ${label}: 50 ms setInterval ticks during training: ${JSON.stringify(t.ticks)} (the run ${t.state} at ${t.steps})`);
    check(t.ticks[0].step < t.ticks[1].step && t.ticks[1].step < t.ticks[2].step, `${name}, ${label}: the run made no progress between ticks: ${JSON.stringify(t.ticks)}`);
    check(t.state === 'cancelled' && t.steps < t.total && t.last === t.steps, `${name}, ${label}: the third tick's cancel() left the run ${t.state} at ${t.steps} of ${t.total} (train resolved at ${t.last})`);
    say(offline, `${label} on the CPU: the 20 ms timeout fired at step ${t.timeout.step}, 50 ms interval ticks at steps ${t.ticks.map((k) => k.step).join(', ')}, ${t.frames} animation frames; cancelled at step ${t.steps} of ${t.total} after ${t.ms} ms`);
  }

  // An AbortSignal: the step at the abort is the step at the rejection.
  const ab = await evaluate(([c]) => window.consumer.abortTrain(c), { ...settings, steps: 3000 });
  check(ab.name === 'AbortError' && ab.isDOMException, `${name}: train({signal}) rejected with ${JSON.stringify(ab)}`);
  check(ab.atAbort > 0 && ab.atAbort < ab.total && ab.atReject === ab.atAbort, `${name}: the abort came at step ${ab.atAbort}, the rejection at step ${ab.atReject} (no step may run after it)`);
  check(ab.state === 'ready' && ab.after === ab.atReject + 5, `${name}: after the abort the run is ${ab.state} and step(5) reached ${ab.after}`);
  check(ab.timeout.name === 'AbortError' && ab.timeout.cause === 'TimeoutError', `${name}: AbortSignal.timeout(50) gave ${JSON.stringify(ab.timeout)}`);
  say(offline, `train({ signal }) aborted by a 100 ms timer at step ${ab.atAbort}: rejected with an AbortError at the same step; AbortSignal.timeout(50) aborted at step ${ab.timeout.steps}`);

  // Invalid settings: the field named.
  for (const [config, options, field] of [
    [{ learning_rate: -1 }, undefined, 'learning_rate'],
    [{ learning_rate: 'fast' }, undefined, 'learning_rate'],
    [{ hidden: 'wide' }, undefined, 'hidden'],
    [{ steps: true }, undefined, 'steps'],
    [{ batch_size: 1e9 }, undefined, 'batch_size'],
    [{}, { free: ['nothing'] }, 'free'],
  ]) {
    const e = await evaluate(([c, o]) => window.consumer.invalid(c, o), config, options);
    check(e && e.name === 'ConfigError' && e.field === field, `${JSON.stringify(config)} ${JSON.stringify(options)}: expected a ConfigError naming ${field}, got ${JSON.stringify(e)}`);
  }
  say(offline, '6 invalid configurations reject with a ConfigError naming the field');

  // A panic: a clear error, refusing objects, a working next run (a fresh instance of the compiled module).
  panicking = true;
  const panic = await evaluate(([c]) => window.consumer.panic(c), { ...settings, steps: 40 });
  panicking = false;
  check(panic.crash?.isCrashError && panic.crash.code === 'crashed' && /^reprolab: the engine crashed \(.+\); create a new run$/.test(panic.crash.message), `debugPanic in the page gave ${JSON.stringify(panic.crash)}`);
  check(panic.refused?.name === 'EngineCrashError' && /crashed earlier/.test(panic.refused.message), `a run of the crashed instance gave ${JSON.stringify(panic.refused)}`);
  for (const text of [panic.crash.message, panic.refused.message]) {
    check(!/unreachable|recursive use of an object/i.test(text), `a message shows the engine's internals: "${text}"`);
  }
  check(!firstMismatch(cli.hash_chain.slice(0, 40), panic.after.hashChain), 'the run after the panic differs from the CLI');
  say(offline, `a panic reads "${panic.crash.message}"; the old run refuses; the next createRun trains (40 links equal the CLI's)`);

  const fetchedAfter = server.requests.slice(fetchedBefore);
  if (d.setOffline) await d.setOffline(false);
  check(fetchedAfter.length === 0, `${name}: after init() the page fetched ${fetchedAfter.join(', ')}`);
  check(problems.length === 0, `${name}: the page reported problems:\n  ${problems.join('\n  ')}`);
  say(offline, `none of the above fetched anything after init()${d.setOffline ? ' (the browser was offline)' : ''}; the wasm was fetched ${wasmFetches()} time(s) in all`);

  // ---- the README's pause/resume/cancel example, as shipped --------------------
  consoleLines.length = 0;
  await evaluate(() => window.consumer.readmePause());
  say('README', `"Pause, resume and cancel": ${checkPauseExample(consoleLines.slice(), `${name}, README pause example`)}`);

  // ---- WebGPU (where the browser has an adapter) -------------------------------
  if (await evaluate(() => window.consumer.hasGpu())) {
    const gpuSettings = { ...settings, steps: 60 };
    const gpu = await train(gpuSettings, { backend: 'gpu' });
    check(gpu.backend === 'gpu' && gpu.manifestBackend === 'gpu', `backend gpu trained on ${gpu.backend}: ${gpu.backendReason}`);
    check(gpu.hashChain.length === 60, `the GPU run has ${gpu.hashChain.length} links, expected 60`);
    const adapter = [gpu.adapter?.vendor, gpu.adapter?.architecture, gpu.adapter?.description].filter(Boolean).join(' ') || '(withheld)';
    check(typeof gpu.adapterIsSoftware === 'boolean' && gpu.level === 'run-to-run', `a pinned WebGPU run: adapterIsSoftware ${gpu.adapterIsSoftware}, level ${gpu.level}`);
    if (/swiftshader|llvmpipe|lavapipe/i.test(adapter)) check(gpu.adapterIsSoftware === true, `${adapter} is a software adapter, adapterIsSoftware says ${gpu.adapterIsSoftware}`);
    say('WebGPU', `backend gpu: 60 steps on the GPU in ${gpu.ms} ms (${gpu.reports} reports), adapter ${adapter}${gpu.adapterIsSoftware ? ' (software)' : ''}, ${gpu.adapter?.graphicsBackend}; reason "${gpu.backendReason}"`);
    const gpuAgain = await train(gpuSettings, { backend: 'gpu' });
    check(!firstMismatch(gpu.hashChain, gpuAgain.hashChain), `two pinned WebGPU runs differ: ${firstMismatch(gpu.hashChain, gpuAgain.hashChain)}`);
    const replayed = await evaluate(([c]) => window.consumer.gpuReplay(c), { ...settings, steps: 40 });
    check(replayed.identical === true && replayed.backend === 'gpu' && replayed.comparable === true, `${name}: replay of a WebGPU manifest gave ${JSON.stringify(replayed)}`);
    say('WebGPU', `a second pinned run gives the same 60 links; replay of a WebGPU record runs on the GPU: identical, level ${replayed.level} ("${replayed.reason}")`);
    const auto = await train({ ...settings, steps: 20 }, { backend: 'auto' });
    say('WebGPU', `backend auto: trained on the ${auto.backend.toUpperCase()} (${auto.backendDecision.kind}); reason "${auto.backendReason}"`);
  } else {
    check(name !== 'chromium', 'Chromium (--enable-unsafe-webgpu) offers no WebGPU adapter');
    say('WebGPU', 'no WebGPU adapter in this browser: the GPU checks run in Chromium');
  }
  check(problems.length === 0, `${name}: the page reported problems:\n  ${problems.join('\n  ')}`);
  await d.close();
  browsers.delete(d);
}

// Every ```js and ```ts block of the README, as TypeScript modules, checked
// by tsc --strict (the browser ones with the DOM, the others with Node's
// types): the examples and the types must agree.
async function typecheckReadme(dir, readme) {
  const blocks = [];
  const re = /^```(js|ts)( browser)?\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(readme); m; m = re.exec(readme)) blocks.push({ code: m[3], line: readme.slice(0, m.index).split('\n').length });
  const folder = path.join(dir, 'readme-types');
  await mkdir(folder, { recursive: true });
  const files = [];
  for (const [i, b] of blocks.entries()) {
    const file = `example-${String(i + 1).padStart(2, '0')}-line-${b.line}.mts`;
    await writeFile(path.join(folder, file), b.code.includes('import ') || b.code.includes('export ') ? b.code : `${b.code}\nexport {};\n`);
    files.push(file);
  }
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
      types: ['node'],
      strict: true,
      noEmit: true,
      skipLibCheck: false,
    },
    files,
  };
  await writeFile(path.join(folder, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  await writeFile(path.join(folder, 'package.json'), '{ "type": "module" }\n');
  await sh(path.join(dir, 'node_modules/.bin/tsc'), ['-p', folder], { cwd: dir }).catch((e) => {
    throw new Failure(`README examples fail tsc --strict:\n${e.message}`);
  });
  return blocks.length;
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
    await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, 'vite@7', 'typescript@5', '@types/node@20'], {
      cwd: dir,
      timeout: 240_000,
    });
    const installed = JSON.parse(await readFile(path.join(dir, 'node_modules/reprolab/package.json'), 'utf8'));
    check(installed.name === 'reprolab' && installed.version === v, `installed ${installed.name}@${installed.version}, expected reprolab@${v}`);
    log(`installed ${rel(tarball)} with vite@7, typescript@5 and @types/node@20 into a fresh project (${dir}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // 0. The wrapper's crash handling, against a mock engine.
    process.stdout.write(await sh('node', [path.join(ROOT, 'tests/package/mock-engine.mjs')], { cwd: ROOT }));

    // 1. Node.js: the native CLI's hash chain.
    const settings = JSON.parse(await readFile(path.join(dir, 'settings.json'), 'utf8'));
    const cli = await cliManifest(dir, 'cli', 'settings.json');
    const cliThreaded = await cliManifest(dir, 'cli-threaded', 'settings.json', ['threads=3', 'chunks=6', 'steps=60']);
    // A GPU record (lavapipe here), for api.mjs's replay without WebGPU.
    await cliManifest(dir, 'cli-gpu', 'settings.json', ['steps=30'], 'gpu');
    process.stdout.write(await sh('node', ['hash-chain.mjs', 'cli.json'], { cwd: dir }));

    // 1b. Node.js, forced garbage collection: flat memory over 100k step(1)
    // calls and after 200 dropped runs.
    process.stdout.write(await sh('node', ['--expose-gc', 'gc.mjs'], { cwd: dir, timeout: 300_000 }));

    // 1c. An engine that cannot load: an EngineLoadError.
    process.stdout.write(await sh('node', ['load-error.mjs'], { cwd: dir }));

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
      let out;
      try {
        out = await sh('node', [path.basename(file)], { cwd: dir, timeout: 60_000 });
      } catch (e) {
        throw new Failure(`README example ${i + 1} (line ${ex.line}, under "${ex.heading}") failed:\n${e.message}`);
      }
      if (ex.heading === 'Pause, resume and cancel') {
        log(`Node.js, README "Pause, resume and cancel": ${checkPauseExample(out.trim().split('\n'), 'Node.js, README pause example')}`);
        // The same module, bundled by Vite into the page.
        await writeFile(path.join(dir, 'readme-pause.js'), ex.code);
      }
    }
    check(
      examples.some((ex) => ex.heading === 'Pause, resume and cancel'),
      'the README has no "Pause, resume and cancel" example',
    );
    log(`all ${examples.length} \`\`\`js examples of the package README ran in Node.js (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

    // 4. The types.
    for (const config of ['tsconfig.json', 'tsconfig.node.json']) {
      await sh(path.join(dir, 'node_modules/.bin/tsc'), ['--noEmit', '-p', config], { cwd: dir });
    }
    log('tsc --strict --noEmit of example.ts against the shipped types: bundler + DOM and Node16 without DOM both pass (and the deliberate mistakes are errors)');
    const checked = await typecheckReadme(dir, readme);
    log(`tsc --strict: all ${checked} \`\`\`js and \`\`\`ts examples of the README type-check (as TypeScript, with the DOM and Node's types)`);

    // 5. A page built by Vite, in headless Chromium.
    t0 = performance.now();
    await sh(path.join(dir, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: dir });
    const assets = await readdir(path.join(dir, 'dist/assets'));
    check(assets.some((f) => f.endsWith('.wasm')), `vite build emitted no .wasm: ${assets.join(', ')}`);
    check(assets.some((f) => f.startsWith('chunk-worker')), `vite build emitted no worker: ${assets.join(', ')}`);
    log(`vite build: ${assets.join(', ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    server = await serve(path.join(dir, 'dist'));
    for (const name of ['chromium', 'firefox']) await browserChecks(name, settings, cli, cliThreaded);
  } finally {
    if (KEEP) log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

// However node ends, the server and browser go with it.
const watchdog = setTimeout(() => {
  console.error(`package: FAILED: gave up after ${WHOLE_TEST_MS / 1000} s`);
  for (const d of browsers) d.kill();
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
  for (const d of browsers) await d.close().catch(() => {});
  server?.close();
  clearTimeout(watchdog);
}
process.exit(code);
