// End-to-end tests of the demo page in real browsers, with WebGPU on and off:
//
//   node tests/page/e2e.mjs                    Chromium and Firefox (www/pkg/ must be built)
//   node tests/page/e2e.mjs chromium           one browser
//   node tests/page/e2e.mjs firefox
//   node tests/page/e2e.mjs isolated [BROWSER]  only the cross-origin isolated check
//
// Chromium through playwright-core (the system Chromium, /usr/bin/chromium;
// WebGPU: --enable-unsafe-webgpu, Dawn on SwiftShader); Firefox ESR through
// puppeteer-core over WebDriver BiDi (WebGPU: the prefs dom.webgpu.enabled and
// gfx.webgpu.ignore-blocklist, wgpu on lavapipe). In each browser, with
// WebGPU on and then off (issue 12's items in brackets):
//   - the banner says what asking for an adapter gave [7], the Backend
//     select's choices fit in it [7]; two pinned runs: "identical" (on the
//     GPU with WebGPU on, Backend gpu), each card saying why it is where it is;
//   - the time from Start to the first plotted step is measured and printed,
//     never asserted [3]; so are the engine exports the page found;
//   - the master switch unticked on the default settings (fewer steps): a
//     verdict, no error, every free source named with whether it could act,
//     cpu_threads and gpu_reduction inert on the CPU with a fix button; with
//     WebGPU off in Chromium, the cpu_threads fix in one click re-runs with
//     it acting [1, 2];
//   - backend and gpu_reduction free with Backend cpu: run 1 stays on the
//     CPU, and the verdict's "could act" for backend matches where the runs
//     trained [2];
//   - shuffle free: "diverged" with the first step and cause; the loss
//     difference chart shows it [8];
//   - a link with state in the URL: every control matches it;
//   - an exported manifest imported: its replay is "identical", the record's
//     card has no comparison row and no heat map, the banner names the
//     replay's backend [7]; the same manifest edited: refused, no curve [6];
//   - with WebGPU on: the guided story, with Start pressed during chapter 2:
//     the story pauses (chapter 2 not recorded), the charts stay in view,
//     "Resume the story" runs it to the end; each chapter shows its numbers
//     and is kept in the story's table [4]; in Chromium, the page opened over
//     plain http from another host (no secure context) says why it has no
//     WebGPU and trains on the CPU;
//   - with WebGPU off: a refused setting is named and marked; bad input from
//     the URL (a 200,000-digit seed, runs=99, an unknown backend and source,
//     an oversized network) is corrected with visible notes or refused with
//     the limit named, the echo capped, the page no wider [6]; Step from idle
//     advances both runs one step at a time, the status saying so [7];
//     Resume ends them; a changed setting re-runs by itself, the hover
//     cursor reads every chart at one step, every chart has its table, the
//     2-D heat maps are redrawn while training [8]; CSV and PNG exports; with
//     threads 3 and chunks 6 (nested Web Workers) a pinned run gives the
//     native CLI's weights hash (target/release/reprolab; in Firefox through
//     WebDriver classic, geckodriver, in a browser of its own); the WebAssembly is
//     fetched once per page, gzip-compressed, with an ETag that answers 304
//     (issue 13 item 5); no sideways scrolling at phone width;
//   - at 390x844: after Start the verdict and the first chart are in view [5]
//     (screenshots of the viewport);
// and then, per browser, the page cross-origin isolated (serve.py ISOLATE=1,
// as `make demo` serves it; needs www/pkg-threads/): threads 3 and chunks 6
// on WebAssembly threads (Web Workers sharing the engine's memory), pinned,
// give the native CLI's hash; with cpu_threads free the runs combine in order
// of arrival;
// and throughout: no console error or warning, no uncaught error, no request
// outside the page's origin. Screenshots go to tests/page/screenshots/.
// Exit code 0 when every flow passed; the last line is "N passed, N failed".

import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(ROOT, 'tests/page/screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
const LOAD_MS = 30_000;
const RUN_MS = 120_000;
const STORY_MS = 240_000;
const WHOLE_MS = 1_800_000;
const DESK = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
// Small runs, so that every flow takes seconds even on a software GPU.
const SMALL = { dataset: 'digits', hidden: '32', steps: '60', eval_every: '20' };
const SMALL_2D = { dataset: 'spiral', hidden: '16', steps: '80', eval_every: '20' };
// The master switch on the default settings, shortened (the switch does not
// depend on the run's length).
const DEFAULTS_SHORT = { steps: '150' };
// Chromium's own words when a page asks for an adapter and there is none:
// expected, and allowed, only with WebGPU off.
const NO_ADAPTER = 'No available adapters.';
const INSECURE_HOST = 'reprolab-demo.test';
const WASM_PATH = '/www/pkg/reprolab_bg.wasm';

class Failure extends Error {}
const check = (ok, message) => {
  if (!ok) throw new Failure(message);
};

// ---- the server ---------------------------------------------------------------

// scripts/serve.py with VERBOSE=1: every request is logged, so the test can
// count how often the WebAssembly was fetched.
function startServer(env = {}) {
  const server = spawn('python3', [path.join(ROOT, 'scripts/serve.py')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', VERBOSE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const requests = [];
  let errBuf = '';
  server.stderr.setEncoding('utf8');
  server.stderr.on('data', (chunk) => {
    errBuf += chunk;
    const lines = errBuf.split('\n');
    errBuf = lines.pop();
    for (const line of lines) {
      const m = line.match(/"(GET|HEAD) (\S+) HTTP\/[\d.]+" (\d{3})/);
      if (m) requests.push({ method: m[1], path: m[2], status: Number(m[3]) });
      else if (line.trim() && !/dropped the connection/.test(line)) process.stderr.write(`serve.py: ${line}\n`);
    }
  });
  const address = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure('scripts/serve.py printed no address within 10 s')), 10_000);
    let out = '';
    server.stdout.setEncoding('utf8');
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/^(http:\/\/127\.0\.0\.1:\d+\/)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Failure(`scripts/serve.py exited (code ${code})`));
    });
  });
  return { server, address, requests };
}

// ---- one driver interface over playwright-core and puppeteer-core ----------------

async function launchChromium(webgpu) {
  const { chromium } = await import('playwright-core');
  const common = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
  // INSECURE_HOST resolves to 127.0.0.1: a page there is plain http from
  // "another machine" (only localhost and 127.0.0.1 count as secure).
  const hosts = `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: webgpu ? [...common, hosts, '--enable-unsafe-webgpu'] : [...common, hosts, '--disable-gpu'],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: DESK });
  const page = await context.newPage();
  return {
    name: 'chromium',
    browser,
    page,
    onConsole(fn) {
      page.on('console', (m) => fn(m.type(), m.text()));
      page.on('worker', (w) => w.on?.('console', (m) => fn(m.type(), m.text())));
    },
    onError: (fn) => page.on('pageerror', (e) => fn(e.message)),
    onRequest: (fn) => page.on('request', (r) => fn(r.url())),
    onFailed: (fn) => page.on('requestfailed', (r) => fn(r.url(), r.failure()?.errorText)),
    goto: (url) => page.goto(url),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    waitFor: (fn, arg, timeout) => page.waitForFunction(fn, arg, { timeout, polling: 100 }),
    click: (sel) => page.click(sel),
    mouse: (x, y) => page.mouse.move(x, y),
    upload: (sel, file) => page.setInputFiles(sel, file),
    viewport: (size) => page.setViewportSize(size),
    screenshot: (file, fullPage) => page.screenshot({ path: file, fullPage }),
    close: () => browser.close(),
  };
}

async function launchFirefox(webgpu) {
  const puppeteer = (await import('puppeteer-core')).default;
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    protocol: 'webDriverBiDi',
    extraPrefsFirefox: webgpu
      ? { 'dom.webgpu.enabled': true, 'gfx.webgpu.ignore-blocklist': true }
      : { 'dom.webgpu.enabled': false },
  });
  const page = await browser.newPage();
  await page.setViewport(DESK);
  return {
    name: 'firefox',
    browser,
    page,
    onConsole: (fn) => page.on('console', (m) => fn(m.type() === 'warn' ? 'warning' : m.type(), m.text())),
    onError: (fn) => page.on('pageerror', (e) => fn(e.message)),
    onRequest: (fn) => page.on('request', (r) => fn(r.url())),
    onFailed: (fn) => page.on('requestfailed', (r) => fn(r.url(), r.failure()?.errorText)),
    goto: (url) => page.goto(url),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    waitFor: (fn, arg, timeout) => page.waitForFunction(fn, { timeout, polling: 100 }, arg),
    click: (sel) => page.click(sel),
    mouse: (x, y) => page.mouse.move(x, y),
    upload: async (sel, file) => (await page.$(sel)).uploadFile(file),
    viewport: (size) => page.setViewport(size),
    screenshot: (file, fullPage) => page.screenshot({ path: file, fullPage }),
    close: () => browser.close(),
  };
}

// Firefox through WebDriver classic (geckodriver, no BiDi session), for the
// nested Web Workers check (see there): the few calls the flows need.
async function launchFirefoxClassic() {
  const net = await import('node:net');
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => resolve(p));
    });
  });
  const driver = spawn(process.env.GECKODRIVER ?? 'geckodriver', ['--port', String(port)], { stdio: 'ignore' });
  const wd = async (method, url, body) => {
    const r = await fetch(`http://127.0.0.1:${port}${url}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const v = (await r.json()).value;
    if (!r.ok) throw new Failure(`geckodriver ${method} ${url}: ${v?.error}: ${v?.message}`);
    return v;
  };
  let session = null;
  for (let i = 0; i < 50 && !session; i++) {
    try {
      session = await wd('POST', '/session', {
        capabilities: { alwaysMatch: { browserName: 'firefox', 'moz:firefoxOptions': { binary: FIREFOX, args: ['-headless'], prefs: { 'dom.webgpu.enabled': false } } } },
      });
    } catch (e) {
      if (e instanceof Failure) throw e;
      await new Promise((r) => setTimeout(r, 200)); // geckodriver still starting
    }
  }
  if (!session) throw new Failure('geckodriver did not start');
  const at = `/session/${session.sessionId}`;
  const evaluate = (fn, arg) => wd('POST', `${at}/execute/sync`, { script: `return (${fn})(arguments[0]);`, args: [arg ?? null] });
  return {
    name: 'firefox',
    goto: (url) => wd('POST', `${at}/url`, { url }),
    evaluate,
    async waitFor(fn, arg, timeout) {
      const end = Date.now() + timeout;
      while (!(await evaluate(fn, arg))) {
        if (Date.now() > end) throw new Failure(`waited ${timeout / 1000} s in vain`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    click: (sel) => evaluate((s) => document.querySelector(s).click(), sel),
    async close() {
      await wd('DELETE', at).catch(() => {});
      driver.kill();
    },
  };
}

// ---- helpers on the page ---------------------------------------------------------

const state = (d) => d.evaluate(() => document.body.dataset.state);
const status = (d) => d.evaluate(() => document.querySelector('#status').textContent);

async function waitState(d, wanted, timeout) {
  try {
    await d.waitFor((ends) => ends.includes(document.body.dataset.state), [wanted, 'error', 'done'], timeout);
  } catch {
    const progress = await d.evaluate(() =>
      [document.querySelector('#progress-text').textContent, ...[...document.querySelectorAll('.run-card [data-field="progress"]')].map((e) => e.textContent)].join(' · '),
    );
    throw new Failure(`timed out after ${timeout / 1000} s waiting for state ${wanted}: state ${await state(d)}, status "${await status(d)}", ${progress}`);
  }
  const got = await state(d);
  check(got === wanted, `expected state ${wanted}, got ${got}: "${await status(d)}"`);
}

// A fresh load of the page at `hash` (a reload races with the old page's state).
async function open(d, base, hash) {
  await d.goto('about:blank');
  await d.goto(`${base}${hash}`);
  await waitState(d, 'idle', LOAD_MS);
}

function hashOf(settings, extra) {
  return `#${new URLSearchParams({ ...settings, ...extra })}`;
}

// The text of every hook, and what the run cards say.
function readPage(d) {
  return d.evaluate(() => ({
    verdict: document.querySelector('[data-verdict]').textContent,
    first: document.querySelector('[data-first-divergent-step]').textContent,
    status: document.querySelector('#status').textContent,
    causes: document.querySelector('#causes').textContent,
    levels: document.querySelector('#levels').textContent,
    levelsData: document.querySelector('#levels').dataset.levels ?? '',
    effects: [...document.querySelectorAll('#free-effects li')].map((li) => ({
      source: li.dataset.source,
      acts: li.dataset.acts,
      parted: li.dataset.parted,
      text: li.textContent,
      fix: li.querySelector('button[data-fix]')?.textContent ?? null,
    })),
    cards: [...document.querySelectorAll('.run-card')].map((c) => ({
      kind: c.dataset.kind,
      title: c.querySelector('h3').textContent,
      progress: c.querySelector('[data-field="progress"]').textContent,
      backend: c.querySelector('[data-field="backend"]').textContent,
      backendKind: c.querySelector('[data-field="backend"]').dataset.kind ?? null,
      trainedOn: c.querySelector('[data-field="backend"]').dataset.backend ?? null,
      level: c.querySelector('[data-field="level"]').dataset.level ?? '',
      levelText: c.querySelector('[data-field="level"]').textContent,
      vs: c.querySelector('[data-field="vs-reference"]')?.textContent ?? null,
      inert: c.querySelector('[data-field="inert"]')?.textContent ?? null,
      hash: c.querySelector('[data-field="weights-hash"]').textContent,
      manifest: c.querySelector('a.manifest-link:not([hidden])')?.href ?? null,
    })),
    env: document.querySelector('#env').textContent,
    envGpu: document.querySelector('#env').dataset.gpu,
    points: Object.fromEntries([...document.querySelectorAll('.chart[data-points]')].map((c) => [c.id, Number(c.dataset.points)])),
  }));
}

// The story's chapters: verdicts, results, the parts of a chapter in parts
// (its last), the kept table and chart.
function readStory(d) {
  return d.evaluate(() => {
    const items = [...document.querySelectorAll('#story-steps li')];
    const parted = items.map((li) => li.dataset.parts).filter(Boolean);
    return {
      verdicts: items.map((li) => li.dataset.verdict ?? ''),
      results: items.map((li) => li.querySelector('.story-result').textContent),
      parts: parted.length ? JSON.parse(parted.at(-1)) : null,
      rows: document.querySelectorAll('#story-table tbody tr').length,
      series: document.querySelectorAll('#story-chart .u-legend .u-series').length,
      verdict: document.querySelector('[data-verdict]').textContent,
    };
  });
}

async function setSource(d, name, pinned) {
  await d.evaluate(
    ([n, p]) => {
      const box = document.querySelector(`input[type=checkbox][data-source="${n}"]`);
      if (box.checked !== p) box.click();
    },
    [name, pinned],
  );
}

// Clicks Start and returns the milliseconds from the click to the first
// plotted step (measured on the page's clock), once the runs are done.
async function startTimed(d, wanted = 'done', timeout = RUN_MS) {
  const t0 = await d.evaluate(() => {
    const t = performance.now();
    document.querySelector('[data-action="start"]').click();
    return t;
  });
  await waitState(d, wanted, timeout);
  const at = await d.evaluate(() => Number(document.querySelector('#charts').dataset.firstPointAt));
  return Number.isFinite(at) ? at - t0 : null;
}

async function shot(d, mode, name, fullPage = true) {
  await mkdir(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${d.name}-${mode}-${name}.png`);
  await d.screenshot(file, fullPage);
  return path.relative(ROOT, file);
}

// The weights hash the native CLI (target/release/reprolab) gives on the CPU.
async function nativeHash(settings) {
  const cli = path.join(ROOT, 'target/release/reprolab');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'reprolab-e2e-cli-'));
  try {
    const out = path.join(dir, 'run.json');
    const args = ['train', '--backend', 'cpu', ...Object.entries(settings).flatMap(([k, v]) => ['--set', `${k}=${v}`]), '--quiet', '--out', out];
    await new Promise((resolve, reject) => {
      execFile(cli, args, { cwd: ROOT, timeout: 60_000 }, (e, stdout, stderr) => {
        if (e?.code === 'ENOENT') reject(new Failure('target/release/reprolab is missing: cargo build --release (make test does)'));
        else if (e) reject(new Failure(`reprolab ${args.join(' ')}: ${stderr.trim() || e.message}`));
        else resolve();
      });
    });
    return JSON.parse(await readFile(out, 'utf8')).weights_hash;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- the flows -------------------------------------------------------------------------

async function flows(d, base, webgpu, log, server) {
  const mode = webgpu ? 'webgpu' : 'cpu';
  const small = webgpu ? SMALL : SMALL_2D;

  // Two pinned runs; with WebGPU on, on the GPU (Backend gpu: auto passes a
  // software adapter by). The WebAssembly is fetched once for the page and
  // its two run workers.
  const fetchedBefore = server.requests.length;
  await open(d, base, hashOf(small, { runs: '2', backend: webgpu ? 'gpu' : 'auto', free: '' }));
  let p = await readPage(d);
  if (webgpu) check(['software', 'gpu'].includes(p.envGpu) && /adapter/.test(p.env), `WebGPU on: the banner should name the adapter it got: [${p.envGpu}] "${p.env}"`);
  else check(['no-api', 'no-adapter'].includes(p.envGpu) && /CPU/.test(p.env), `WebGPU off: the banner should say there is no adapter: [${p.envGpu}] "${p.env}"`);
  log(`banner [${p.envGpu}]: "${p.env.slice(0, 110)}…"`);
  const caps = await d.evaluate(() => document.querySelector('#engine-capabilities').dataset.capabilities);
  log(`engine exports found: ${caps}`);
  const cut = await d.evaluate(() => {
    const sel = document.querySelector('[data-setting="backend"]');
    const cs = getComputedStyle(sel);
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const room = sel.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 20; // the arrow
    return [...sel.options].filter((o) => ctx.measureText(o.text).width > room).map((o) => o.text);
  });
  check(cut.length === 0, `the Backend select cuts off ${JSON.stringify(cut)}`);
  const boxes = await d.evaluate(() => [...document.querySelectorAll('input[type=checkbox][data-source]')].map((b) => [b.dataset.source, b.checked]));
  check(boxes.length === 9 && boxes.every(([, c]) => c), `nine pinned source switches expected, got ${JSON.stringify(boxes)}`);
  const firstPoint = await startTimed(d);
  p = await readPage(d);
  check(p.verdict === 'identical', `two pinned runs: verdict "${p.verdict}" (${p.status})`);
  check(p.first === '', `two pinned runs: first divergent step "${p.first}"`);
  check(p.effects.length === 0, `two pinned runs: no free source to name, got ${JSON.stringify(p.effects)}`);
  for (const [i, c] of p.cards.entries()) {
    if (webgpu) check(c.trainedOn === 'gpu' && c.backend.includes('GPU (WebGPU'), `WebGPU on, Backend gpu: a run should say it trained on the GPU: "${c.backend}"`);
    else if (i === 0) check(c.trainedOn === 'cpu' && c.backendKind === 'auto_no_gpu' && /auto: the CPU/.test(c.backend), `WebGPU off: the fallback should be stated: [${c.backendKind}] "${c.backend}"`);
    else check(c.trainedOn === 'cpu', `WebGPU off: "${c.backend}"`);
    if (i > 0) check(c.backendKind === 'recorded' && /run 1's backend/.test(c.backend), `a pinned re-run should follow run 1's backend: [${c.backendKind}] "${c.backend}"`);
    check(c.level === 'run-to-run' && /^run-to-run: all sources pinned/.test(c.levelText), `a pinned run should be granted run-to-run, and say why: "${c.levelText}"`);
  }
  check(p.levelsData === 'run-to-run,run-to-run' && /^Arithmetic level: run 1 run-to-run on (WebGPU|the CPU), run 2 run-to-run/.test(p.levels),
    `the verdict should state each run's level: [${p.levelsData}] "${p.levels}"`);
  const wasmFetches = server.requests.slice(fetchedBefore).filter((r) => r.path.startsWith(WASM_PATH));
  check(wasmFetches.length === 1, `the WebAssembly should be fetched once for the page and its 2 run workers, was ${wasmFetches.length} times: ${JSON.stringify(wasmFetches)}`);
  log(`two pinned runs: identical (${p.cards[0].backend.slice(0, 70)}…); first step plotted ${firstPoint?.toFixed(0)} ms after Start ` +
    `(${p.cards[0].trainedOn} engine; measured, not asserted); WebAssembly fetched ${wasmFetches.length}x (HTTP ${wasmFetches[0].status}); ${await shot(d, mode, 'pinned-identical')}`);
  const manifestUrl = p.cards[0].manifest;
  check(manifestUrl?.startsWith('blob:'), `run 1's manifest link should be a blob: URL, is ${manifestUrl}`);
  const manifest = await d.evaluate((u) => fetch(u).then((r) => r.text()), manifestUrl);

  // The master switch unticked on the default settings: no error, a
  // verdict that names every free source and whether it could act.
  await open(d, base, hashOf(DEFAULTS_SHORT, {}));
  await d.click('#reproducible');
  const freed = await d.evaluate(() => [...document.querySelectorAll('input[data-source]')].filter((b) => !b.checked).map((b) => b.dataset.source));
  const firstCpu = await startTimed(d);
  p = await readPage(d);
  check(!/error/i.test(await state(d)), `master switch: ${p.status}`);
  check(p.verdict === 'diverged', `master switch unticked: verdict "${p.verdict}" (${p.status})`);
  check(p.effects.map((e) => e.source).join(',') === freed.join(','), `the verdict should name every free source (${freed}), names ${p.effects.map((e) => e.source)}`);
  const eff = Object.fromEntries(p.effects.map((e) => [e.source, e]));
  for (const s of ['init', 'shuffle']) check(eff[s].acts === 'true' && eff[s].parted === 'true', `${s} free should act and part the runs: ${JSON.stringify(eff[s])}`);
  check(eff.cpu_threads.acts === 'false' && /thread/.test(eff.cpu_threads.text) && /threads \d+/.test(eff.cpu_threads.fix ?? ''),
    `cpu_threads with one thread: could not act, with a fix: ${JSON.stringify(eff.cpu_threads)}`);
  const onGpu = p.cards.some((c) => c.trainedOn === 'gpu');
  check(eff.gpu_reduction.acts === String(onGpu) && (onGpu || /CPU/.test(eff.gpu_reduction.text)),
    `gpu_reduction should act only where a run trained on the GPU (${onGpu}): ${JSON.stringify(eff.gpu_reduction)}`);
  check(/cpu_threads/.test(p.cards[0].inert ?? '') && /cpu_threads/.test(p.cards[1].inert ?? ''), `the run cards should say cpu_threads could not act: ${p.cards.map((c) => c.inert)}`);
  log(`master switch on the defaults (steps ${DEFAULTS_SHORT.steps}): ${p.verdict}, ${p.effects.map((e) => `${e.source} ${e.acts === 'true' ? 'acts' : 'inert'}`).join(', ')}; ` +
    `first step plotted ${firstCpu?.toFixed(0)} ms after Start (${p.cards[0].trainedOn} engine, auto; measured, not asserted); ${await shot(d, mode, 'master-switch')}`);
  // The one-click fix starts a pool of nested Web Workers: in Chromium only,
  // since under puppeteer's WebDriver BiDi session Firefox now and then
  // blocks a worker in `new Worker` (the automation's hang: see the nested
  // Web Workers check below, which runs in Firefox through WebDriver classic).
  if (!webgpu && d.name === 'chromium') {
    // The fix, one click: more threads and chunks, re-run; now cpu_threads acts.
    const [, threads] = eff.cpu_threads.fix.match(/threads (\d+)/);
    await d.click('#free-effects button[data-fix="cpu_threads"]');
    await d.waitFor((t) => document.querySelector('[data-setting="threads"]').value === t && document.body.dataset.state === 'running', threads, 10_000);
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    const fixed = p.effects.find((e) => e.source === 'cpu_threads');
    check(fixed?.acts === 'true', `after the fix cpu_threads should act: ${JSON.stringify(fixed)} (${p.status})`);
    check(p.cards.every((c) => new RegExp(`${threads} threads \\(the run's own and ${threads - 1} Web Workers?\\) compute the \\d+ chunks`).test(c.backend) && /order of arrival/.test(c.backend)), `after the fix: ${p.cards.map((c) => c.backend)}`);
    log(`the cpu_threads fix, one click ("${eff.cpu_threads.fix}"), re-run: cpu_threads ${fixed.parted === 'true' ? 'acted and parted the runs' : 'could act'}`);
  }

  // Backend and gpu_reduction free, Backend cpu: run 1 stays on the CPU.
  await open(d, base, hashOf(small, { runs: '3', backend: 'cpu', free: 'backend,gpu_reduction' }));
  await d.click('[data-action="start"]');
  await waitState(d, 'done', RUN_MS);
  p = await readPage(d);
  check(p.cards[0].trainedOn === 'cpu' && p.cards[0].backendKind === 'requested', `Backend cpu with backend free: run 1 must stay on the CPU: [${p.cards[0].backendKind}] ${p.cards[0].backend}`);
  const where = new Set(p.cards.map((c) => c.trainedOn));
  const backendFx = p.effects.find((e) => e.source === 'backend');
  check(backendFx && backendFx.acts === String(where.size > 1), `backend free: "could act" (${backendFx?.acts}) should match where the runs trained (${[...where]}): ${backendFx?.text}`);
  const reductionFx = p.effects.find((e) => e.source === 'gpu_reduction');
  check(reductionFx && reductionFx.acts === String(where.has('gpu')), `gpu_reduction free: "could act" (${reductionFx?.acts}) should match ${[...where]}: ${reductionFx?.text}`);
  check((p.verdict === 'identical') === (where.size === 1), `backend free: verdict ${p.verdict} with runs on ${[...where]}`);
  log(`backend free, Backend cpu: run 1 on the CPU, the re-runs on ${p.cards.slice(1).map((c) => c.trainedOn)}; verdict ${p.verdict}; ` +
    `backend ${backendFx.acts === 'true' ? 'acts' : `inert ("${backendFx.text.slice(0, 80)}")`}`);

  // Shuffle free; the difference chart shows the parting.
  await open(d, base, hashOf(small, { runs: '2', backend: 'auto', free: 'shuffle' }));
  await d.click('[data-action="start"]');
  await waitState(d, 'done', RUN_MS);
  p = await readPage(d);
  check(p.verdict === 'diverged', `shuffle free: verdict "${p.verdict}" (${p.status})`);
  check(/^\d+$/.test(p.first) && Number(p.first) >= 1, `shuffle free: first divergent step "${p.first}"`);
  check(p.causes.includes('shuffle'), `shuffle free: the causes should name shuffle: "${p.causes}"`);
  check(p.cards.every((c) => c.level === 'none'), `shuffle free: level none expected, got ${p.cards.map((c) => c.level)}`);
  check(p.points['chart-diff'] >= Number(small.steps), `the loss difference chart should plot run 2's every step: ${JSON.stringify(p.points)}`);
  log(`shuffle free: diverged at step ${p.first}; ${await shot(d, mode, 'shuffle-diverged')}`);

  // State in the URL; autostart=1 (what "Copy link to this view" adds) starts the runs on load.
  const want = { ...small, learning_rate: '0.03', seed: '11', runs: '3', backend: 'cpu', free: 'dropout,data_drift', autostart: '1' };
  await d.goto('about:blank');
  await d.goto(`${base}${hashOf(want, {})}`);
  await waitState(d, 'done', RUN_MS);
  const seen = await d.evaluate(() => ({
    lr: document.querySelector('[data-setting="learning_rate"]').value,
    seed: document.querySelector('[data-setting="seed"]').value,
    dataset: document.querySelector('[data-setting="dataset"]').value,
    runs: document.querySelector('[data-setting="runs"]').value,
    backend: document.querySelector('[data-setting="backend"]').value,
    free: [...document.querySelectorAll('input[type=checkbox][data-source]')].filter((b) => !b.checked).map((b) => b.dataset.source),
  }));
  check(
    seen.lr === '0.03' && seen.seed === '11' && seen.dataset === small.dataset && seen.runs === '3' && seen.backend === 'cpu' &&
      seen.free.join(',') === 'dropout,data_drift',
    `the controls do not match the URL: ${JSON.stringify(seen)}`,
  );
  p = await readPage(d);
  check(p.cards.length === 3 && p.verdict === 'diverged', `the linked view: ${p.cards.length} runs, verdict "${p.verdict}"`);
  const drift = p.effects.find((e) => e.source === 'data_drift');
  check(drift?.acts === 'false', `data_drift free on the latest data version should say it could not act: ${JSON.stringify(drift)}`);
  log('state restored from the URL, and the linked view started: 3 runs, dropout free (data_drift said inert), diverged');

  // Import the exported manifest: its replay is identical. Then an edited copy: refused, nothing plotted.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'reprolab-e2e-'));
  try {
    const file = path.join(dir, 'run-1.json');
    await writeFile(file, manifest);
    await d.upload('[data-action="import"]', file);
    // The page was already "done": wait for the replay's own closing words.
    await d.waitFor(() => /^Replayed run-1\.json/.test(document.querySelector('#status').textContent) || document.body.dataset.state === 'error', null, RUN_MS);
    await waitState(d, 'done', 1000);
    p = await readPage(d);
    check(p.verdict === 'identical', `the imported manifest's replay: verdict "${p.verdict}" (${p.status})`);
    const [record, replay] = p.cards;
    check(record.kind === 'record' && record.title === 'Record (run-1.json)' && record.vs === null, `the record's card: ${JSON.stringify(record)}`);
    check(replay.kind === 'replay' && replay.vs === 'identical at every step' && /record/.test(replay.backend), `the replay's card: ${JSON.stringify(replay)}`);
    const boxes2 = await d.evaluate(() => ({
      heat: [...document.querySelectorAll('#heatmaps .heat')].map((f) => f.dataset.run),
      empty: [...document.querySelectorAll('.run-card dd')].filter((dd) => dd.textContent.trim() === '').map((dd) => dd.dataset.field),
      distShown: getComputedStyle(document.querySelector('#chart-dist').closest('figure')).display !== 'none',
    }));
    check(!boxes2.heat.includes('1') && !boxes2.distShown, `a replay should draw no heat map for the record and no distance chart: ${JSON.stringify(boxes2)}`);
    check(boxes2.empty.length === 0, `a replay's cards should have no empty boxes: ${boxes2.empty}`);
    check(/Last replay: record on the (CPU|GPU), replay on the (CPU|GPU)/.test(p.env), `the banner should name the replay's backends: "${p.env}"`);
    log(`imported manifest replayed: identical; ${await shot(d, mode, 'import-identical')}`);

    const edited = JSON.parse(manifest);
    edited.train_loss[3] = edited.train_loss[3] * 1.5;
    const bad = path.join(dir, 'edited.json');
    await writeFile(bad, JSON.stringify(edited));
    await d.upload('[data-action="import"]', bad);
    // The page was "done": wait for the words about this file (a refusal, or a replay's end).
    await d.waitFor(
      () => ['error', 'done'].includes(document.body.dataset.state) && /edited\.json/.test(document.querySelector('#status').textContent),
      null,
      RUN_MS,
    );
    await waitState(d, 'error', 1000);
    p = await readPage(d);
    const plotted = Object.values(p.points).reduce((a, b) => a + b, 0);
    check(/edited\.json/.test(p.status) && plotted === 0 && p.verdict === '' && (p.cards.length === 0 || /refused/.test(p.cards[0].progress)) && p.cards.every((c) => !c.manifest && c.hash === ''),
      `an edited manifest should be refused with nothing plotted: "${p.status}", ${JSON.stringify(p.points)}`);
    log(`edited manifest refused, nothing plotted: "${p.status.slice(0, 100)}…"`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  if (webgpu) {
    // The guided story; Start during chapter 2 pauses it.
    await open(d, base, '#');
    await d.click('[data-action="story"]');
    await d.waitFor(() => document.body.dataset.story === '2' && document.body.dataset.state === 'running', null, STORY_MS);
    const inView = await d.evaluate(() => document.querySelector('#chart-loss').getBoundingClientRect().top < window.innerHeight);
    check(inView, 'during the story the training loss chart should start above the fold');
    await d.click('[data-action="start"]');
    await d.waitFor(() => document.body.dataset.storyState === 'paused', null, 10_000);
    let story = await d.evaluate(() => ({
      verdicts: [...document.querySelectorAll('#story-steps li')].map((li) => li.dataset.verdict ?? ''),
      results: [...document.querySelectorAll('#story-steps .story-result')].map((r) => r.textContent),
      button: document.querySelector('[data-action="story"]').textContent,
    }));
    check(story.verdicts[0] === 'identical' && story.verdicts[1] === 'paused' && /^Paused/.test(story.results[1]) && story.button === 'Resume the story',
      `Start during chapter 2 should pause the story: ${JSON.stringify(story)}`);
    await waitState(d, 'done', RUN_MS); // the reader's own runs
    check((await d.evaluate(() => document.body.dataset.storyState)) === 'paused', 'the story should stay paused while the reader\'s runs finish');
    await d.click('[data-action="story"]');
    try {
      await d.waitFor(() => document.body.dataset.story === 'done', null, STORY_MS);
    } catch {
      throw new Failure(`the story did not finish in ${STORY_MS / 1000} s: chapter ${await d.evaluate(() => document.body.dataset.story)}, "${await status(d)}"`);
    }
    story = await readStory(d);
    check(story.verdicts.join(',') === 'identical,diverged,diverged,diverged,identical,identical' && story.verdict === 'identical',
      `story verdicts ${story.verdicts.join(',')}; the last two should be identical`);
    check(story.results.slice(0, 5).every((r) => /run 1 \d+\.\d\d %, run 2 \d+\.\d\d %/.test(r)) && /number the colleague reported/.test(story.results[0]),
      `each chapter should show its own numbers: ${JSON.stringify(story.results)}`);
    // The exact chapter: WebGPU and the CPU part at run-to-run and coincide to the bit at exact.
    const [rtr, exact] = story.parts ?? [];
    check(rtr?.label === 'run-to-run' && rtr.backends.join() === 'gpu,cpu' && rtr.levels.join() === 'run-to-run,run-to-run' && rtr.verdict === 'diverged' && rtr.first >= 1 && rtr.heads[0] !== rtr.heads[1],
      `the GPU-and-CPU chapter at run-to-run should part at a step, one run on each backend: ${JSON.stringify(rtr)}`);
    check(exact?.label === 'exact' && exact.backends.join() === 'gpu,cpu' && exact.levels.join() === 'exact,exact' && exact.verdict === 'identical' && exact.first === null && /^[0-9a-f]{16}$/.test(exact.heads[0]) && exact.heads[0] === exact.heads[1],
      `the GPU-and-CPU chapter at exact should end with the same chain head on both: ${JSON.stringify(exact)}`);
    check(new RegExp(`part at step ${rtr.first}\\b`).test(story.results[5]) && story.results[5].includes(`${exact.heads[0]} = ${exact.heads[1]}`),
      `the chapter should show its own numbers (the parting step, the chain heads): "${story.results[5]}"`);
    check(story.rows === 7 && story.series === 11, `every chapter's runs should be kept: ${story.rows} table rows (5 + 2 parts), ${story.series} chart series (step + 6 + 4)`);
    log(`story: paused by Start in chapter 2, resumed: ${story.verdicts.join(', ')}; chapter 6: WebGPU and CPU part at step ${rtr.first} at run-to-run, ` +
      `chain heads ${exact.heads.join(' = ')} at exact: "${story.results[5]}"; ${await shot(d, mode, 'story-done')}`);

    if (d.name === 'chromium') {
      // Plain http from another machine: no secure context, so no WebGPU; the page says so and trains on the CPU.
      const insecure = base.replace('127.0.0.1', INSECURE_HOST);
      await open(d, insecure, hashOf(small, { runs: '2', backend: 'auto', free: '' }));
      await d.click('[data-action="start"]');
      await waitState(d, 'done', RUN_MS);
      p = await readPage(d);
      check(/plain http from another machine/.test(p.env) && /secure contexts/.test(p.env), `no secure context: the page should say why there is no WebGPU: "${p.env}"`);
      check(p.verdict === 'identical' && p.cards.every((c) => c.trainedOn === 'cpu'), `no secure context: ${p.verdict}, ${p.cards.map((c) => c.backend)}`);
      log(`plain http from another host: "${p.env.slice(0, 80)}…", runs on the CPU; ${await shot(d, mode, 'insecure-context')}`);
    }
  } else {
    // The story without WebGPU: the GPU-and-CPU chapter is not run, and says
    // why and what it would need; no numbers of its own.
    await open(d, base, '#');
    await d.click('[data-action="story"]');
    try {
      await d.waitFor(() => document.body.dataset.story === 'done', null, STORY_MS);
    } catch {
      throw new Failure(`the story did not finish in ${STORY_MS / 1000} s: chapter ${await d.evaluate(() => document.body.dataset.story)}, "${await status(d)}"`);
    }
    const story = await readStory(d);
    check(story.verdicts.join(',') === 'identical,diverged,diverged,diverged,identical,not-run', `story verdicts without WebGPU: ${story.verdicts.join(',')}`);
    check(/^Not run here: .*no WebGPU adapter.*needs a browser with WebGPU/.test(story.results[5]) && !/part at step|chain heads/.test(story.results[5]) && story.parts === null && story.rows === 5,
      `without WebGPU the GPU-and-CPU chapter should say it was not run, and why: "${story.results[5]}" (${story.rows} rows)`);
    log(`story without WebGPU: ${story.verdicts.join(', ')}; chapter 6: "${story.results[5].slice(0, 120)}…"`);

    // A refused setting, named and marked.
    await open(d, base, hashOf(small, { learning_rate: '-1', runs: '2', backend: 'auto', free: '' }));
    await d.click('[data-action="start"]');
    await waitState(d, 'error', 20_000);
    const err = await d.evaluate(() => ({
      status: document.querySelector('#status').textContent,
      invalid: document.querySelector('[data-setting="learning_rate"]').getAttribute('aria-invalid'),
    }));
    check(err.status.includes('learning_rate') && err.invalid === 'true', `learning rate -1: ${JSON.stringify(err)}`);
    log(`learning rate -1 refused: "${err.status}"`);

    // Bad input in the URL: corrected with notes, refused with the limit named, echo capped.
    const longSeed = '9'.repeat(200_000);
    await open(d, base, hashOf(small, { seed: longSeed, runs: '99', backend: 'warp', free: 'shuffle,bogus', colour: 'red' }));
    let bad = await d.evaluate(() => ({
      notes: [...document.querySelectorAll('#url-notes li')].map((li) => li.textContent),
      runs: document.querySelector('[data-setting="runs"]').value,
      backend: document.querySelector('[data-setting="backend"]').value,
      wider: document.documentElement.scrollWidth - window.innerWidth,
    }));
    check(bad.runs === '4' && bad.backend === 'auto', `runs=99 and backend=warp: the form shows runs ${bad.runs}, backend ${bad.backend}`);
    for (const word of ['runs=99', 'backend=warp', 'bogus', 'colour']) check(bad.notes.some((n) => n.includes(word)), `a visible note should say what became of ${word}: ${JSON.stringify(bad.notes)}`);
    check(bad.notes.join(' ').length < 1500 && bad.wider <= 0, `the notes should be short and the page no wider: ${bad.notes.join(' ').length} characters, ${bad.wider} px wider`);
    await d.click('[data-action="start"]');
    await waitState(d, 'error', 20_000);
    bad = await d.evaluate(() => ({
      status: document.querySelector('#status').textContent,
      invalid: document.querySelector('[data-setting="seed"]').getAttribute('aria-invalid'),
      wider: document.documentElement.scrollWidth - window.innerWidth,
      longest: Math.max(...[...document.querySelectorAll('body *')].filter((e) => !['INPUT', 'SCRIPT', 'STYLE'].includes(e.tagName) && e.children.length === 0).map((e) => e.textContent.length)),
    }));
    check(/seed/.test(bad.status) && /200000 characters/.test(bad.status) && bad.status.length <= 400 && bad.invalid === 'true' && bad.wider <= 0 && bad.longest < 2000,
      `a 200,000-digit seed should be refused with the echo capped: ${JSON.stringify({ ...bad, status: bad.status.slice(0, 300) })}`);
    log(`200,000-digit seed refused, echo capped: "${bad.status}"`);
    // Networks too big for a tab: refused before any run is made, the limit named.
    for (const hidden of ['16384,16384', '16384,16384,16384,16384']) {
      await d.evaluate((h) => {
        document.querySelector('[data-setting="seed"]').value = '7';
        document.querySelector('[data-setting="hidden"]').value = h;
      }, hidden);
      await d.click('[data-action="start"]');
      await waitState(d, 'error', 20_000);
      bad = await d.evaluate(() => ({
        status: document.querySelector('#status').textContent,
        invalid: document.querySelector('[data-setting="hidden"]').getAttribute('aria-invalid'),
        workers: document.querySelectorAll('.run-card').length,
      }));
      // The engine's words (MAX_PARAMS) where it checks its limits, else the page's (max_params).
      check(/^hidden: .*(at most|more than) [\d,]+ .*(max_params|MAX_PARAMS)/.test(bad.status) && bad.invalid === 'true' && bad.workers === 0,
        `hidden ${hidden} should be refused before any run is made, the limit named: ${JSON.stringify(bad)}`);
      log(`hidden ${hidden} refused: "${bad.status}"`);
    }

    // The arithmetic level: a control listing the engine's levels, kept in
    // the URL, shown in each run card and in the verdict; a change re-runs.
    await open(d, base, hashOf(small, { level: 'exact', runs: '2', backend: 'cpu', free: '' }));
    const levelControl = await d.evaluate(() => {
      const sel = document.querySelector('[data-setting="level"]');
      return { tag: sel.tagName, options: [...sel.options].map((o) => o.value), value: sel.value, label: sel.labels[0]?.textContent ?? '' };
    });
    check(levelControl.tag === 'SELECT' && levelControl.options.join() === 'none,run-to-run,exact' && levelControl.value === 'exact' && /Arithmetic level/.test(levelControl.label),
      `the level control should offer the engine's levels and show the URL's: ${JSON.stringify(levelControl)}`);
    await d.click('[data-action="start"]');
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    check(p.verdict === 'identical' && p.cards.every((c) => c.level === 'exact' && /^exact: .*exact arithmetic/.test(c.levelText)) && p.levelsData === 'exact,exact' && /exact: the same bits on every stack/.test(p.levels),
      `level=exact from the URL: each card and the verdict should say exact: ${JSON.stringify({ verdict: p.verdict, levels: p.levels, cards: p.cards.map((c) => c.levelText) })}`);
    log(`level exact from the URL: identical; card "${p.cards[0].levelText.slice(0, 90)}…"; verdict "${p.levels.slice(0, 90)}…"`);
    await d.evaluate(() => {
      const sel = document.querySelector('[data-setting="level"]');
      sel.value = 'none';
      sel.dispatchEvent(new Event('change', { bubbles: true }));
    });
    check(await d.evaluate(() => location.hash.includes('level=none')), 'choosing level none should write it into the URL');
    await d.waitFor(() => document.body.dataset.state === 'running', null, 5000);
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    check(p.cards.every((c) => c.level === 'none' && /level none asked for/.test(c.levelText)) && p.levelsData === 'none,none',
      `level none chosen: ${JSON.stringify(p.cards.map((c) => c.levelText))}, verdict levels [${p.levelsData}]`);
    log('level none chosen with the control: in the URL, re-ran, every card says none');

    // Step from idle: both runs advance one step at a time, paused, the status saying so; Resume ends them.
    await open(d, base, hashOf(small, { runs: '2', backend: 'cpu', free: '' }));
    const progressIs = (text) => d.waitFor((t) => document.querySelector('#progress-text').textContent === t, text, 20_000);
    await d.click('[data-action="step"]');
    await progressIs(`run 1: step 1 / ${small.steps} · run 2: step 1 / ${small.steps}`);
    await d.waitFor((t) => document.querySelector('#status').textContent.startsWith(t), `Paused at step 1 of ${small.steps}`, 5000);
    await d.click('[data-action="step"]');
    await progressIs(`run 1: step 2 / ${small.steps} · run 2: step 2 / ${small.steps}`);
    await d.waitFor((t) => document.querySelector('#status').textContent.startsWith(t), `Paused at step 2 of ${small.steps}`, 5000);
    check((await state(d)) === 'paused', `after Step the page should be paused, is ${await state(d)}`);
    await d.click('[data-action="pause"]'); // reads "Resume" while paused
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    check(p.verdict === 'identical', `stepped pinned runs: verdict "${p.verdict}"`);
    log('Step twice ("Paused at step 2 of 80…"), then Resume: identical');

    // Playground's habits: the heat maps were redrawn while training (2-D
    // data), the shared cursor, a table per chart, a change re-runs.
    const heat = await d.evaluate(() => [...document.querySelectorAll('#heatmaps canvas')].map((c) => ({ w: c.clientWidth, live: Number(c.dataset.drawsLive ?? 0), points: Number(c.dataset.points ?? 0) })));
    check(heat.length === 2 && heat.every((h) => h.w >= 240 && h.live >= 1), `2-D data: a heat map per run, at least 240 px, redrawn while training: ${JSON.stringify(heat)}`);
    // The training points on the maps: every example of the training split
    // (the data set less the validation fraction, 0.2 by default).
    const data = JSON.parse(await d.evaluate((u) => fetch(u).then((r) => r.text()), p.cards[0].manifest)).data;
    const trainCount = data.size * 0.8;
    check(heat.every((h) => Math.abs(h.points - trainCount) <= 1), `each heat map should draw the ${trainCount} training points of ${data.name} (${data.size} examples): ${JSON.stringify(heat)}`);
    const caption = await d.evaluate(() => document.querySelector('#heatmaps figcaption').textContent);
    check(/\d+ training points/.test(caption), `the heat map's caption should count the points: "${caption}"`);
    await d.evaluate(() => document.querySelector('#heatmaps').scrollIntoView({ block: 'center' }));
    const heatShot = await shot(d, mode, 'heatmaps', false);
    await d.evaluate(() => window.scrollTo(0, 0));
    log(`heat maps: ${heat[0].points} training points drawn on each (${data.name}, ${data.size} examples); ${heatShot}`);
    const box = await d.evaluate(() => {
      const r = document.querySelector('#chart-loss .u-over').getBoundingClientRect();
      return { x: r.left + r.width * 0.5, y: r.top + r.height * 0.5 };
    });
    await d.mouse(box.x, box.y);
    await d.waitFor(() => /^Step \d+:/.test(document.querySelector('#cursor-readout').textContent), null, 5000);
    const cursor = await d.evaluate(() => ({
      readout: document.querySelector('#cursor-readout').textContent,
      valLegend: [...document.querySelectorAll('#chart-val .u-legend .u-value')].map((e) => e.textContent),
      distLegend: [...document.querySelectorAll('#chart-dist .u-legend .u-value')].map((e) => e.textContent),
    }));
    check(/loss: run 1 [\d.e-]+, run 2/.test(cursor.readout) && /validation error/.test(cursor.readout) && /distance/.test(cursor.readout) && /\|Δ loss\|/.test(cursor.readout),
      `the hover cursor should read every chart at one step: "${cursor.readout}"`);
    check(cursor.valLegend.some((v) => /%/.test(v)) && cursor.distLegend.some((v) => v === 'identical'), `the other charts' cursors should follow: ${JSON.stringify(cursor)}`);
    log(`hover cursor: "${cursor.readout.slice(0, 140)}…"`);
    const tables = await d.evaluate(() =>
      [...document.querySelectorAll('details[data-table]')].map((det) => {
        det.open = true;
        det.dispatchEvent(new Event('toggle'));
        return det.dataset.table;
      }),
    );
    await d.waitFor(() => [...document.querySelectorAll('details[data-table] tbody')].length === 4, null, 5000);
    const rows = await d.evaluate(() => Object.fromEntries([...document.querySelectorAll('details[data-table]')].map((det) => [det.dataset.table, det.querySelectorAll('tbody tr').length])));
    check(tables.length === 4 && Object.values(rows).every((n) => n > 0), `every chart should have a table of its values: ${JSON.stringify(rows)}`);
    log(`tables: ${JSON.stringify(rows)}`);
    // A changed setting re-runs by itself (debounced), with the new value.
    await d.evaluate(() => {
      const lr = document.querySelector('[data-setting="learning_rate"]');
      lr.value = '0.04';
      lr.dispatchEvent(new Event('input', { bubbles: true }));
      lr.dispatchEvent(new Event('change', { bubbles: true }));
    });
    await d.waitFor(() => document.body.dataset.state === 'running', null, 5000);
    await waitState(d, 'done', RUN_MS);
    const rerun = await d.evaluate(() => location.hash.includes('learning_rate=0.04'));
    check(rerun, 'the re-run should carry the changed learning rate');
    log('a changed setting re-ran by itself (debounced)');

    // Exports: the curves as CSV and the charts as PNG, caught at the link's click.
    const exported = await d.evaluate(async () => {
      const got = [];
      const click = HTMLAnchorElement.prototype.click;
      HTMLAnchorElement.prototype.click = function capture() {
        got.push({ name: this.download, href: this.href });
      };
      try {
        document.querySelector('[data-action="export-csv"]').click();
        document.querySelector('[data-action="export-png"]').click();
        for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      } finally {
        HTMLAnchorElement.prototype.click = click;
      }
      const out = [];
      for (const { name, href } of got) {
        const bytes = new Uint8Array(await (await fetch(href)).arrayBuffer());
        out.push({ name, size: bytes.length, head: Array.from(bytes.slice(0, 8)), text: name.endsWith('.csv') ? new TextDecoder().decode(bytes) : '' });
      }
      return out;
    });
    const csv = exported.find((e) => e.name === 'curves.csv');
    const png = exported.find((e) => e.name === 'charts.png');
    check(csv && csv.text.startsWith('run,step,train_loss,val_error') && csv.text.trim().split('\n').length === 1 + 2 * Number(small.steps),
      `curves.csv: ${csv ? csv.text.slice(0, 80) : 'not exported'}`);
    check(png && png.head.join(',') === '137,80,78,71,13,10,26,10' && png.size > 1000, `charts.png: ${JSON.stringify(png?.head)}`);
    log(`exports: curves.csv (${csv.text.trim().split('\n').length} lines), charts.png (${png.size} bytes)`);

    // CPU threads as nested Web Workers: pinned, the native CLI's weights hash.
    // In Firefox through WebDriver classic (geckodriver), in a browser of its
    // own: under a WebDriver BiDi session (puppeteer's), Firefox's remote
    // agent listens to every worker's debugger registration, and a worker
    // that starts a nested worker then blocks now and then in `new Worker`
    // for good (11 runs of 50 here; 0 of 24 without BiDi: plain Firefox, or
    // WebDriver classic). That hang is the automation's, not the page's.
    const threaded = { dataset: 'digits', steps: '60', threads: '3', chunks: '6' };
    const t = d.browser === 'firefox' ? await launchFirefoxClassic() : d;
    try {
      await open(t, base, hashOf(threaded, { runs: '2', backend: 'cpu', free: '' }));
      await t.click('[data-action="start"]');
      await waitState(t, 'done', RUN_MS);
      p = await readPage(t);
    } finally {
      if (t !== d) await t.close();
    }
    const native = await nativeHash(threaded);
    check(p.verdict === 'identical', `threads 3, chunks 6, pinned: verdict "${p.verdict}"`);
    check(p.cards.every((c) => c.backend.includes("3 threads (the run's own and 2 Web Workers) compute the 6 chunks") && c.backend.includes('in chunk order')),
      `each run should say its 3 threads combine in chunk order: ${p.cards.map((c) => c.backend).join(' | ')}`);
    check(p.cards[0].hash === native, `threads 3, chunks 6: the page gives ${p.cards[0].hash}, the native CLI ${native}`);
    log(`3 threads (2 Web Workers) per run, cpu_threads pinned: identical, the native CLI's hash ${native}${t !== d ? ' (Firefox through WebDriver classic)' : ''}`);

    // The server: gzip, an ETag, and 304 for an unchanged file.
    const wasmUrl = new URL(WASM_PATH, base);
    const first = await fetch(wasmUrl, { headers: { 'accept-encoding': 'gzip' } });
    const body = await first.arrayBuffer();
    const etag = first.headers.get('etag');
    const again = await fetch(wasmUrl, { headers: { 'accept-encoding': 'gzip', 'if-none-match': etag } });
    check(first.headers.get('content-encoding') === 'gzip' && etag && /no-cache/.test(first.headers.get('cache-control')) && again.status === 304,
      `serve.py: ${first.headers.get('content-encoding')}, ETag ${etag}, Cache-Control ${first.headers.get('cache-control')}, then ${again.status}`);
    log(`serve.py: the wasm goes out gzip (${first.headers.get('content-length')} bytes on the wire, ${body.byteLength} unpacked), ETag ${etag}, then 304`);

    // Phone width: nothing pushes the page wider than the screen.
    await d.viewport({ width: 360, height: 740 });
    await d.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 200))));
    const overflow = await d.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `at 360 px the page scrolls sideways by ${overflow} px`);
    log(`no sideways scrolling at 360 px; ${await shot(d, mode, 'phone-360')}`);
    await d.viewport(DESK);
  }

  // A phone: after Start, the verdict and the first chart come into view.
  await d.viewport(PHONE);
  await open(d, base, hashOf(small, { runs: '2', backend: 'auto', free: 'shuffle' }));
  await d.click('[data-action="start"]');
  await d.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 300))));
  const view = await d.evaluate(() => {
    const verdict = document.querySelector('.verdict-line').getBoundingClientRect();
    const chart = document.querySelector('#chart-loss').getBoundingClientRect();
    return { verdictTop: verdict.top, verdictBottom: verdict.bottom, chartTop: chart.top, h: window.innerHeight, scrolled: window.scrollY };
  });
  check(view.verdictTop >= 0 && view.verdictBottom <= view.h && view.chartTop < view.h, `at 390x844, after Start the verdict and the loss chart should be in view: ${JSON.stringify(view)}`);
  const during = await shot(d, mode, 'phone-390x844-after-start', false);
  await waitState(d, 'done', RUN_MS);
  log(`at 390x844 Start scrolled ${view.scrolled.toFixed(0)} px down: verdict at ${view.verdictTop.toFixed(0)} px, loss chart at ${view.chartTop.toFixed(0)} px; ` +
    `${during}, ${await shot(d, mode, 'phone-390x844-done', false)}`);
  await d.viewport(DESK);
}

// One browser in one mode: launches, watches, runs the flows.
async function runOne(browserName, base, webgpu, server) {
  const label = `${browserName}, WebGPU ${webgpu ? 'on' : 'off'}`;
  const t0 = Date.now();
  const log = (m) => console.log(`e2e [${label}] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${m}`);
  const problems = [];
  let d;
  try {
    d = browserName === 'chromium' ? await launchChromium(webgpu) : await launchFirefox(webgpu);
    d.browser = browserName;
    const origins = [new URL(base).origin, new URL(base.replace('127.0.0.1', INSECURE_HOST)).origin];
    d.onConsole((type, text) => {
      if (!webgpu && type === 'warning' && text === NO_ADAPTER) return;
      if (type === 'error' || type === 'warning') problems.push(`console ${type}: ${text}`);
    });
    d.onError((m) => problems.push(`uncaught error: ${m}`));
    d.onRequest((url) => {
      if (url.startsWith('data:') || url.startsWith('blob:') || url === 'about:blank') return;
      if (!origins.includes(new URL(url).origin)) problems.push(`request outside the origin: ${url}`);
    });
    d.onFailed((url, why) => {
      if (url.startsWith('blob:')) return;
      // Cancelled, not failed: the page stops a set of runs (a new Start, a
      // changed setting, the story paused) while a worker still loads.
      if (/ERR_ABORTED|NS_BINDING_ABORTED/.test(why ?? '')) return;
      problems.push(`request failed: ${url} (${why})`);
    });
    await flows(d, base, webgpu, log, server);
    check(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
    log('passed');
    return true;
  } catch (e) {
    console.error(`e2e [${label}]: FAILED: ${e instanceof Failure ? e.message : e.stack}`);
    for (const p of problems) console.error(`e2e [${label}]:   ${p}`);
    return false;
  } finally {
    await d?.close().catch(() => {});
  }
}

// The page cross-origin isolated (scripts/serve.py with ISOLATE=1, as `make
// demo` serves it): CPU runs with threads > 1 take the WebAssembly-threads
// build (www/pkg-threads/), Web Workers sharing the engine's memory. Pinned,
// both runs are identical and give the native CLI's hash; with cpu_threads
// free they say they combine in order of arrival. Firefox through WebDriver
// classic: the pool's workers are nested workers (see the threads check in
// flows).
async function runIsolated(browserName) {
  const label = `${browserName}, cross-origin isolated`;
  const t0 = Date.now();
  const log = (m) => console.log(`e2e [${label}] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${m}`);
  const server = startServer({ ISOLATE: '1' });
  const problems = [];
  let d;
  try {
    const base = await server.address;
    d = browserName === 'chromium' ? await launchChromium(false) : await launchFirefoxClassic();
    d.browser = browserName;
    d.onConsole?.((type, text) => {
      if (type === 'warning' && text === NO_ADAPTER) return;
      if (type === 'error' || type === 'warning') problems.push(`console ${type}: ${text}`);
    });
    d.onError?.((m) => problems.push(`uncaught error: ${m}`));
    const threaded = { dataset: 'digits', steps: '60', threads: '3', chunks: '6' };
    await open(d, base, hashOf(threaded, { runs: '2', backend: 'cpu', free: '' }));
    check((await d.evaluate(() => self.crossOriginIsolated === true)) === true, 'the page served with ISOLATE=1 should be cross-origin isolated');
    await d.click('[data-action="start"]');
    await waitState(d, 'done', RUN_MS);
    let p = await readPage(d);
    const shared = "3 threads (WebAssembly threads: Web Workers sharing the engine's memory) compute the 6 chunks";
    const native = await nativeHash(threaded);
    check(p.verdict === 'identical', `isolated, threads 3, chunks 6, pinned: verdict "${p.verdict}"`);
    check(p.cards.every((c) => c.backend.includes(shared) && c.backend.includes('in chunk order')),
      `each run should say its 3 WebAssembly threads combine in chunk order: ${p.cards.map((c) => c.backend).join(' | ')}`);
    check(p.cards[0].hash === native, `isolated, threads 3, chunks 6: the page gives ${p.cards[0].hash}, the native CLI ${native}`);
    log(`3 WebAssembly threads (shared memory) per run, cpu_threads pinned: identical, the native CLI's hash ${native}`);
    await open(d, base, hashOf(threaded, { runs: '2', backend: 'cpu', free: 'cpu_threads' }));
    await d.click('[data-action="start"]');
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    check(p.cards.every((c) => c.backend.includes(shared) && c.backend.includes('in order of arrival')),
      `with cpu_threads free each run should say its WebAssembly threads combine in order of arrival: ${p.cards.map((c) => c.backend).join(' | ')}`);
    log(`cpu_threads free on WebAssembly threads: the runs ${p.verdict === 'identical' ? 'stayed identical (the threads finished in chunk order)' : `parted (${p.verdict})`}`);
    check(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
    log('passed');
    return true;
  } catch (e) {
    console.error(`e2e [${label}]: FAILED: ${e instanceof Failure ? e.message : e.stack}`);
    for (const p of problems) console.error(`e2e [${label}]:   ${p}`);
    return false;
  } finally {
    await d?.close().catch(() => {});
    server.server.kill();
  }
}

async function main() {
  const args = process.argv.slice(2);
  const browsers = args.filter((a) => ['chromium', 'firefox'].includes(a));
  const modes = args.includes('webgpu') ? [true] : args.includes('cpu') ? [false] : [true, false];
  const server = startServer();
  process.on('exit', () => server.server.kill());
  let passed = 0;
  let failed = 0;
  try {
    const base = await server.address;
    for (const b of browsers.length ? browsers : ['chromium', 'firefox']) {
      for (const webgpu of args.includes('isolated') ? [] : modes) {
        if (await runOne(b, base, webgpu, server)) passed += 1;
        else failed += 1;
      }
      if (await runIsolated(b)) passed += 1;
      else failed += 1;
    }
  } catch (e) {
    console.error(`e2e: FAILED: ${e.message}`);
    failed += 1;
  } finally {
    server.server.kill();
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1));
const watchdog = setTimeout(() => {
  console.error(`e2e: FAILED: gave up after ${WHOLE_MS / 1000} s`);
  process.exit(1);
}, WHOLE_MS);
const code = await main();
clearTimeout(watchdog);
process.exit(code);
