// Smoke test of the demo page in headless Chromium.
//
//   npm install && node tests/page/smoke.mjs     (www/pkg/ must be built first)
//
// Serves the repository with scripts/serve.py on a free port, trains 100 steps
// through the page, checks the result and the manifest download, saves
// tests/page/screenshots/demo-done.png, then checks that a learning rate of -1
// is refused with a message naming `learning_rate`. With WebGPU off it then
// trains on the CPU with 3 Web Workers (threads=3, chunks=6, 60 steps) twice:
// both runs must give the weights hash of the native CLI for the same settings
// (target/release/reprolab, built by `cargo build --release`), and with
// cpu_threads free it prints how many distinct hashes 5 runs gave. Any console
// error or warning, uncaught page error, failed or foreign request fails the
// test. Exit code 0 on success, 1 on any failure.

import { execFile, spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOTS = path.join(ROOT, 'tests/page/screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const LOAD_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 60_000;
const WHOLE_TEST_MS = 180_000;
const CLI = path.join(ROOT, 'target/release/reprolab');
// The Web Worker runs, as the form sets them and as the CLI's --set sees them.
const THREADED = { threads: '3', chunks: '6', steps: '60' };
const FREE_RUNS = 5;
const PHONE = { width: 360, height: 740 };

class Failure extends Error {}

function check(ok, message) {
  if (!ok) throw new Failure(message);
}

function log(message) {
  console.log(`smoke: ${message}`);
}

// Starts scripts/serve.py on a free port; resolves with the address it prints.
function startServer() {
  const server = spawn('python3', [path.join(ROOT, 'scripts/serve.py')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'], // its stderr shows 404s and the like
  });
  const address = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure('scripts/serve.py printed no address within 10 s')), 10_000);
    let out = '';
    server.stdout.setEncoding('utf8');
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/^(http:\/\/127\.0\.0\.1:\d+\/)$/m);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    server.on('error', (e) => {
      clearTimeout(timer);
      reject(new Failure(`could not start python3 scripts/serve.py: ${e.message}`));
    });
    server.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Failure(`scripts/serve.py exited before serving (code ${code}, signal ${signal})`));
    });
  });
  return { server, address };
}

// Everything the page does wrong, whenever it happens.
// Chromium's own words when a page asks for a WebGPU adapter and there is
// none: expected (and only allowed) in the run with WebGPU off.
const NO_ADAPTER_WARNING = 'No available adapters.';

function watch(page, origin, webgpu) {
  const problems = [];
  page.on('console', (msg) => {
    if (!webgpu && msg.type() === 'warning' && msg.text() === NO_ADAPTER_WARNING) return;
    if (msg.type() === 'error' || msg.type() === 'warning') {
      const where = msg.location()?.url ? ` (${msg.location().url})` : '';
      problems.push(`console ${msg.type()}: ${msg.text()}${where}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:')) return;
    if (new URL(url).origin !== origin) problems.push(`request to another origin: ${request.method()} ${url}`);
  });
  page.on('requestfailed', (request) => {
    if (request.url().startsWith('blob:')) return; // a download ends its navigation; not a failure
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  return problems;
}

const stateOf = (page) => page.evaluate(() => document.body.dataset.state);
const statusOf = (page) => page.textContent('#status');

// Waits until the page reaches `wanted`, or gives up on it at `error` or
// `done`; says what the page showed when that is not `wanted`.
async function waitForState(page, wanted, timeoutMs) {
  const ends = [wanted, 'error', 'done'];
  try {
    await page.waitForFunction((states) => states.includes(document.body.dataset.state), ends, {
      timeout: timeoutMs,
    });
  } catch (e) {
    if (e.name !== 'TimeoutError') throw e;
    throw new Failure(
      `timed out after ${timeoutMs / 1000} s waiting for body[data-state=${wanted}]; ` +
        `state is "${await stateOf(page)}", status says "${await statusOf(page)}"`,
    );
  }
  const state = await stateOf(page);
  check(state === wanted, `expected state "${wanted}", got "${state}"; status says "${await statusOf(page)}"`);
}

async function run(page, address, webgpu) {
  await page.goto(address);
  await waitForState(page, 'idle', LOAD_TIMEOUT_MS);
  log(`page loaded, engine: ${await page.textContent('#engine-version')}`);

  // A short run, the way a person would start it.
  await page.fill('input[name="steps"]', '100');
  await page.click('[data-action="start"]');
  await waitForState(page, 'done', RUN_TIMEOUT_MS);
  const progress = (await page.textContent('#progress-text')).trim();
  check(progress === 'step 100 / 100', `progress should read "step 100 / 100", reads "${progress}"`);
  check(await page.isVisible('#results'), 'the result section is not shown after the run');
  const valError = (await page.textContent('[data-result="val-error"]')).trim();
  check(/^\d+(\.\d+)? %$/.test(valError), `final validation error should read like "12.34 %", reads "${valError}"`);
  const hash = (await page.textContent('[data-result="weights-hash"]')).trim();
  check(hash.length > 0, 'no weights hash is shown');
  const summary = (await page.textContent('#run-summary')).trim();
  if (webgpu) {
    check(summary.includes('on the GPU (WebGPU'), `with WebGPU on the run should say it trained on the GPU: "${summary}"`);
  } else {
    check(summary.includes('on the CPU (auto: running on the CPU because'), `with WebGPU off the page should say why it used the CPU: "${summary}"`);
  }
  log(`trained 100 steps: validation error ${valError}, weights hash ${hash}; ${summary}`);

  // The manifest link: a blob: URL that downloads run.json holding JSON.
  const link = page.locator('a[download="run.json"]');
  check((await link.count()) === 1, 'no "Download manifest" link (a[download="run.json"])');
  const href = await link.getAttribute('href');
  check(href?.startsWith('blob:'), `the manifest link should be a blob: URL, is ${href}`);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  check(download.suggestedFilename() === 'run.json', `manifest downloads as ${download.suggestedFilename()}`);
  let manifest;
  try {
    manifest = JSON.parse(await readFile(await download.path(), 'utf8'));
  } catch (e) {
    throw new Failure(`the downloaded manifest is not JSON: ${e.message}`);
  }
  check(manifest !== null && typeof manifest === 'object', 'the manifest is not a JSON object');
  log(`manifest downloads as run.json (${Object.keys(manifest).length} top-level keys)`);

  const shot = path.join(SCREENSHOTS, webgpu ? 'demo-done-webgpu.png' : 'demo-done-cpu.png');
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot saved to ${path.relative(ROOT, shot)}`);

  // Phone width: nothing may push the page wider than the screen.
  await page.setViewportSize(PHONE);
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `at ${PHONE.width} px wide the page scrolls sideways by ${overflow} px`);
  log(`no sideways scrolling at ${PHONE.width} px`);

  // A setting the engine must refuse, with the field named and highlighted.
  await page.click('[data-action="reset"]');
  await waitForState(page, 'idle', 5_000);
  await page.fill('input[name="learning_rate"]', '-1');
  await page.click('[data-action="start"]');
  await waitForState(page, 'error', 10_000);
  const message = (await statusOf(page)).trim();
  check(message.includes('learning_rate'), `the error should name learning_rate, says "${message}"`);
  const invalid = await page.getAttribute('input[name="learning_rate"]', 'aria-invalid');
  check(invalid === 'true', 'the learning_rate input is not marked aria-invalid="true"');
  log(`learning rate -1 refused: "${message}"`);

  if (!webgpu) await threaded(page);
}

// The weights hash of the native CLI for the THREADED settings on the CPU.
async function nativeHash() {
  try {
    await access(CLI);
  } catch {
    throw new Failure(`${path.relative(ROOT, CLI)} is missing: build it with \`cargo build --release\` (make test does)`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'reprolab-smoke-'));
  try {
    const out = path.join(dir, 't.json');
    const sets = Object.entries(THREADED).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
    const args = ['train', '--backend', 'cpu', ...sets, '--quiet', '--out', out];
    await new Promise((resolve, reject) => {
      execFile(CLI, args, { cwd: ROOT, timeout: 60_000 }, (e, stdout, stderr) => {
        if (e) reject(new Failure(`${path.relative(ROOT, CLI)} ${args.join(' ')} failed: ${stderr.trim() || e.message}`));
        else resolve();
      });
    });
    const hash = JSON.parse(await readFile(out, 'utf8')).weights_hash;
    check(typeof hash === 'string' && hash.length > 0, `the CLI's manifest has no weights_hash`);
    return hash;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// One run with the form as it is; its weights hash and summary.
async function runThreaded(page) {
  await page.click('[data-action="start"]');
  await waitForState(page, 'done', RUN_TIMEOUT_MS);
  const progress = (await page.textContent('#progress-text')).trim();
  const wanted = `step ${THREADED.steps} / ${THREADED.steps}`;
  check(progress === wanted, `progress should read "${wanted}", reads "${progress}"`);
  const hash = (await page.textContent('[data-result="weights-hash"]')).trim();
  check(hash.length > 0, 'no weights hash is shown');
  const summary = (await page.textContent('#run-summary')).trim();
  const workers = `${THREADED.threads} Web Workers computed the ${THREADED.chunks} chunks`;
  check(summary.includes(workers), `the summary should say "${workers}": "${summary}"`);
  return { hash, summary };
}

// CPU threads as Web Workers: pinned, the same bits as the native threads;
// free, whatever order the workers finish in.
async function threaded(page) {
  const expected = await nativeHash();
  await page.click('[data-action="reset"]');
  await waitForState(page, 'idle', 5_000);
  for (const key of Object.keys(THREADED)) {
    check((await page.locator(`input[name="${key}"]`).count()) === 1, `no ${key} field: is www/pkg built from the current sources?`);
    await page.fill(`input[name="${key}"]`, THREADED[key]);
  }
  await page.selectOption('select[name="backend"]', 'cpu');

  const pinned = [await runThreaded(page), await runThreaded(page)];
  for (const { summary } of pinned) {
    check(summary.includes('combined in chunk order'), `a pinned run should combine in chunk order: "${summary}"`);
  }
  check(pinned[0].hash === pinned[1].hash, `two pinned runs with Web Workers differ: ${pinned[0].hash} vs ${pinned[1].hash}`);
  check(
    pinned[0].hash === expected,
    `with Web Workers the page gives ${pinned[0].hash}, the native CLI (OS threads) ${expected}`,
  );
  log(`3 Web Workers, 6 chunks, 60 steps, cpu_threads pinned: ${pinned[0].hash} twice, the native CLI's hash`);

  const box = 'input[name="free"][value="cpu_threads"]';
  check((await page.locator(box).count()) === 1, 'no cpu_threads checkbox');
  await page.check(box);
  const hashes = new Set();
  for (let i = 0; i < FREE_RUNS; i++) {
    const { hash, summary } = await runThreaded(page);
    check(summary.includes('combined in order of arrival'), `a cpu_threads-free run should combine in order of arrival: "${summary}"`);
    hashes.add(hash);
  }
  log(`cpu_threads free: ${hashes.size} distinct weights hash${hashes.size === 1 ? '' : 'es'} in ${FREE_RUNS} runs`);
}

// Module-level so that the watchdog can end them too.
let server;
let browser;

// Chromium with WebGPU on (Dawn on SwiftShader) or off (no adapter).
const COMMON_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

async function flow(url, webgpu) {
  let problems = [];
  try {
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: webgpu ? [...COMMON_ARGS, '--enable-unsafe-webgpu'] : [...COMMON_ARGS, '--disable-gpu'],
      });
    } catch (e) {
      throw new Failure(`could not launch ${CHROMIUM}: ${e.message.split('\n')[0]}`);
    }
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    problems = watch(page, new URL(url).origin, webgpu);
    await run(page, url, webgpu);
    check(problems.length === 0, 'the page reported problems (listed below)');
    log(`passed with WebGPU ${webgpu ? 'on' : 'off'}`);
    return 0;
  } catch (e) {
    console.error(`smoke: FAILED with WebGPU ${webgpu ? 'on' : 'off'}: ${e instanceof Failure ? e.message : e.stack}`);
    for (const problem of problems) console.error(`smoke:   ${problem}`);
    return 1;
  } finally {
    await browser?.close().catch(() => {});
    browser = undefined;
  }
}

async function main() {
  const started = startServer();
  server = started.server;
  try {
    const url = await started.address;
    const gpu = await flow(url, true);
    const cpu = await flow(url, false);
    return gpu || cpu;
  } catch (e) {
    console.error(`smoke: FAILED: ${e instanceof Failure ? e.message : e.stack}`);
    return 1;
  } finally {
    server.kill();
  }
}

// However node ends (an uncaught error, Ctrl-C, a CI timeout's SIGTERM), the
// server goes with it; playwright-core already does the same for the browser.
process.on('exit', () => server?.kill());
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1));

// A hung browser or server must not hang CI.
const watchdog = setTimeout(() => {
  console.error(`smoke: FAILED: gave up after ${WHOLE_TEST_MS / 1000} s`);
  server?.kill();
  browser?.process()?.kill('SIGKILL');
  process.exit(1);
}, WHOLE_TEST_MS);

const code = await main();
clearTimeout(watchdog);
process.exit(code);
