// End-to-end tests of the demo page in real browsers, with WebGPU on and off:
//
//   node tests/page/e2e.mjs                    Chromium and Firefox (www/pkg/ must be built)
//   node tests/page/e2e.mjs chromium           one browser
//   node tests/page/e2e.mjs firefox
//
// Chromium through playwright-core (the system Chromium, /usr/bin/chromium;
// WebGPU: --enable-unsafe-webgpu, Dawn on SwiftShader); Firefox ESR through
// puppeteer-core over WebDriver BiDi (WebGPU: the prefs dom.webgpu.enabled and
// gfx.webgpu.ignore-blocklist, wgpu on lavapipe). In each browser, with
// WebGPU on and then off (the CPU fallback, stated on the page):
//   - two pinned runs: the page says "identical", no first divergent step;
//   - shuffle set free: "diverged", with a first divergent step;
//   - a link with state in the URL: every control matches it;
//   - an exported manifest imported: its replay is "identical";
//   - with WebGPU on: the guided story runs to its end, whose verdict is
//     identical; in Chromium, the page opened over plain http from another
//     host name (no secure context) says why it has no WebGPU and trains on the CPU;
//   - with WebGPU off: a refused setting is named and marked; Step from idle
//     advances both runs one step at a time, Resume ends them; the curves
//     export as CSV and the charts as PNG; with threads 3 and chunks 6 (nested
//     Web Workers) a pinned run gives the native CLI's weights hash
//     (target/release/reprolab, built by cargo build --release); no sideways
//     scrolling at phone width;
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
const RUN_MS = 90_000;
const STORY_MS = 150_000;
const WHOLE_MS = 420_000;
const PHONE = { width: 360, height: 740 };
// Small runs, so that every flow takes seconds even on a software GPU.
const SMALL = { dataset: 'digits', hidden: '32', steps: '60', eval_every: '20' };
const SMALL_2D = { dataset: 'spiral', hidden: '16', steps: '80', eval_every: '20' };
// Chromium's own words when a page asks for an adapter and there is none:
// expected, and allowed, only with WebGPU off.
const NO_ADAPTER = 'No available adapters.';
const INSECURE_HOST = 'reprolab-demo.test';

class Failure extends Error {}
const check = (ok, message) => {
  if (!ok) throw new Failure(message);
};

// ---- the server ---------------------------------------------------------------

function startServer() {
  const server = spawn('python3', [path.join(ROOT, 'scripts/serve.py')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
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
  return { server, address };
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
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
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
    upload: (sel, file) => page.setInputFiles(sel, file),
    viewport: (size) => page.setViewportSize(size),
    screenshot: (file) => page.screenshot({ path: file, fullPage: true }),
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
  await page.setViewport({ width: 1200, height: 1000 });
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
    upload: async (sel, file) => (await page.$(sel)).uploadFile(file),
    viewport: (size) => page.setViewport(size),
    screenshot: (file) => page.screenshot({ path: file, fullPage: true }),
    close: () => browser.close(),
  };
}

// ---- helpers on the page ---------------------------------------------------------

const state = (d) => d.evaluate(() => document.body.dataset.state);
const status = (d) => d.evaluate(() => document.querySelector('#status').textContent);

async function waitState(d, wanted, timeout) {
  try {
    await d.waitFor((ends) => ends.includes(document.body.dataset.state), [wanted, 'error', 'done'], timeout);
  } catch {
    throw new Failure(`timed out after ${timeout / 1000} s waiting for state ${wanted}: state ${await state(d)}, status "${await status(d)}"`);
  }
  const got = await state(d);
  check(got === wanted, `expected state ${wanted}, got ${got}: "${await status(d)}"`);
}

function hashOf(settings, extra) {
  return `#${new URLSearchParams({ ...settings, ...extra })}`;
}

// The text of every hook of item 9, and what the run cards say.
function readPage(d) {
  return d.evaluate(() => ({
    verdict: document.querySelector('[data-verdict]').textContent,
    first: document.querySelector('[data-first-divergent-step]').textContent,
    status: document.querySelector('#status').textContent,
    causes: document.querySelector('#causes').textContent,
    cards: [...document.querySelectorAll('.run-card')].map((c) => ({
      backend: c.querySelector('[data-field="backend"]').textContent,
      level: c.querySelector('[data-field="level"]').textContent,
      vs: c.querySelector('[data-field="vs-run-1"]').textContent,
      hash: c.querySelector('[data-field="weights-hash"]').textContent,
      manifest: c.querySelector('a.manifest-link')?.href ?? null,
    })),
    env: document.querySelector('#env').textContent,
  }));
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

async function shot(d, mode, name) {
  await mkdir(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${d.name}-${mode}-${name}.png`);
  await d.screenshot(file);
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

async function flows(d, base, webgpu, log) {
  const mode = webgpu ? 'webgpu' : 'cpu';
  const small = webgpu ? SMALL : SMALL_2D;

  // Two pinned runs.
  await d.goto(`${base}${hashOf(small, { runs: '2', backend: 'auto', free: '' })}`);
  await waitState(d, 'idle', LOAD_MS);
  const boxes = await d.evaluate(() => [...document.querySelectorAll('input[type=checkbox][data-source]')].map((b) => [b.dataset.source, b.checked]));
  check(boxes.length === 9 && boxes.every(([, c]) => c), `nine pinned source switches expected, got ${JSON.stringify(boxes)}`);
  await d.click('[data-action="start"]');
  await waitState(d, 'done', RUN_MS);
  let p = await readPage(d);
  check(p.verdict === 'identical', `two pinned runs: verdict "${p.verdict}" (${p.status})`);
  check(p.first === '', `two pinned runs: first divergent step "${p.first}"`);
  for (const c of p.cards) {
    if (webgpu) check(c.backend.startsWith('GPU (WebGPU'), `WebGPU on: a run should say it trained on the GPU: "${c.backend}"`);
    else check(c.backend.startsWith('CPU') && /running on the CPU because/.test(c.backend), `WebGPU off: the fallback should be stated: "${c.backend}"`);
    check(c.level === 'run-to-run', `a pinned run should be granted run-to-run, got "${c.level}"`);
  }
  if (!webgpu) check(/no WebGPU|navigator\.gpu is missing/i.test(p.env) || /WebGPU/.test(p.env), `the page should say what it found: "${p.env}"`);
  log(`two pinned runs: identical (${p.cards[0].backend.slice(0, 60)}…); ${await shot(d, mode, 'pinned-identical')}`);
  const manifestUrl = p.cards[0].manifest;
  check(manifestUrl?.startsWith('blob:'), `run 1's manifest link should be a blob: URL, is ${manifestUrl}`);
  const manifest = await d.evaluate((u) => fetch(u).then((r) => r.text()), manifestUrl);

  // Shuffle free.
  await setSource(d, 'shuffle', false);
  const hash = await d.evaluate(() => location.hash);
  check(hash.includes('free=shuffle'), `the URL should hold free=shuffle: ${hash}`);
  await d.click('[data-action="start"]');
  await waitState(d, 'done', RUN_MS);
  p = await readPage(d);
  check(p.verdict === 'diverged', `shuffle free: verdict "${p.verdict}" (${p.status})`);
  check(/^\d+$/.test(p.first) && Number(p.first) >= 1, `shuffle free: first divergent step "${p.first}"`);
  check(p.causes.includes('shuffle'), `shuffle free: the causes should name shuffle: "${p.causes}"`);
  check(p.cards.every((c) => c.level === 'none'), `shuffle free: level none expected, got ${p.cards.map((c) => c.level)}`);
  log(`shuffle free: diverged at step ${p.first}; ${await shot(d, mode, 'shuffle-diverged')}`);

  // State in the URL.
  // autostart=1 (what "Copy link to this view" adds) starts the runs on load.
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
  log('state restored from the URL, and the linked view started: 3 runs, dropout free, diverged');

  // Import the exported manifest: its replay is identical.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'reprolab-e2e-'));
  try {
    const file = path.join(dir, 'run-1.json');
    await writeFile(file, manifest);
    await d.upload('[data-action="import"]', file);
    // The page was already "done": wait for the replay's own closing words.
    await d.waitFor(() => /^Replayed /.test(document.querySelector('#status').textContent) || document.body.dataset.state === 'error', null, RUN_MS);
    await waitState(d, 'done', 1000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  p = await readPage(d);
  check(p.verdict === 'identical', `the imported manifest's replay: verdict "${p.verdict}" (${p.status})`);
  log(`imported manifest replayed: identical; ${await shot(d, mode, 'import-identical')}`);

  if (webgpu) {
    // The guided story, one click, on the backend the page chooses.
    // A fresh load (a reload races with the old page's state).
    await d.goto('about:blank');
    await d.goto(`${base}#`);
    await waitState(d, 'idle', LOAD_MS);
    await d.click('[data-action="story"]');
    try {
      await d.waitFor(() => ['done', undefined].includes(document.body.dataset.story) && document.body.dataset.state !== 'running', null, STORY_MS);
    } catch {
      throw new Failure(`the story did not finish in ${STORY_MS / 1000} s: chapter ${await d.evaluate(() => document.body.dataset.story)}, "${await status(d)}"`);
    }
    const story = await d.evaluate(() => ({
      chapter: document.body.dataset.story,
      verdicts: [...document.querySelectorAll('#story-steps li')].map((li) => li.dataset.verdict ?? ''),
      last: document.querySelector('#story-steps li:last-child .story-result')?.textContent,
      verdict: document.querySelector('[data-verdict]').textContent,
    }));
    check(story.chapter === 'done', `the story stopped: ${JSON.stringify(story)} "${await status(d)}"`);
    check(
      story.verdicts.join(',') === 'identical,diverged,diverged,diverged,identical' && story.verdict === 'identical',
      `story verdicts ${story.verdicts.join(',')}; the last should be identical`,
    );
    log(`story: ${story.verdicts.join(', ')}; ${await shot(d, mode, 'story-done')}`);

    if (d.name === 'chromium') {
      // Plain http from another machine: no secure context, so no WebGPU; the page says so and trains on the CPU.
      const insecure = base.replace('127.0.0.1', INSECURE_HOST);
      await d.goto(`${insecure}${hashOf(small, { runs: '2', backend: 'auto', free: '' })}`);
      await waitState(d, 'idle', LOAD_MS);
      await d.click('[data-action="start"]');
      await waitState(d, 'done', RUN_MS);
      p = await readPage(d);
      check(/plain http from another machine/.test(p.env) && /secure contexts/.test(p.env), `no secure context: the page should say why there is no WebGPU: "${p.env}"`);
      check(p.verdict === 'identical' && p.cards.every((c) => c.backend.startsWith('CPU')), `no secure context: ${p.verdict}, ${p.cards.map((c) => c.backend)}`);
      log(`plain http from another host: "${p.env.slice(0, 80)}…", runs on the CPU; ${await shot(d, mode, 'insecure-context')}`);
    }
  } else {
    // A refused setting, named and marked.
    // A fresh load (a reload races with the old page's state).
    await d.goto('about:blank');
    await d.goto(`${base}${hashOf(small, { learning_rate: '-1', runs: '2', backend: 'auto', free: '' })}`);
    await waitState(d, 'idle', LOAD_MS);
    await d.click('[data-action="start"]');
    await waitState(d, 'error', 20_000);
    const err = await d.evaluate(() => ({
      status: document.querySelector('#status').textContent,
      invalid: document.querySelector('[data-setting="learning_rate"]').getAttribute('aria-invalid'),
    }));
    check(err.status.includes('learning_rate') && err.invalid === 'true', `learning rate -1: ${JSON.stringify(err)}`);
    log(`learning rate -1 refused: "${err.status}"`);

    // Step from idle: both runs advance one step at a time, paused; Resume ends them.
    // A fresh load (a reload races with the old page's state).
    await d.goto('about:blank');
    await d.goto(`${base}${hashOf(small, { runs: '2', backend: 'cpu', free: '' })}`);
    await waitState(d, 'idle', LOAD_MS);
    const progressIs = (text) => d.waitFor((t) => document.querySelector('#progress-text').textContent === t, text, 20_000);
    await d.click('[data-action="step"]');
    await progressIs(`run 1: step 1 / ${small.steps} · run 2: step 1 / ${small.steps}`);
    await d.click('[data-action="step"]');
    await progressIs(`run 1: step 2 / ${small.steps} · run 2: step 2 / ${small.steps}`);
    check((await state(d)) === 'paused', `after Step the page should be paused, is ${await state(d)}`);
    await d.click('[data-action="pause"]'); // reads "Resume" while paused
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    check(p.verdict === 'identical', `stepped pinned runs: verdict "${p.verdict}"`);
    log('Step twice, then Resume: identical');

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
    const threaded = { dataset: 'digits', steps: '60', threads: '3', chunks: '6' };
    // A fresh load (a reload races with the old page's state).
    await d.goto('about:blank');
    await d.goto(`${base}${hashOf(threaded, { runs: '2', backend: 'cpu', free: '' })}`);
    await waitState(d, 'idle', LOAD_MS);
    await d.click('[data-action="start"]');
    await waitState(d, 'done', RUN_MS);
    p = await readPage(d);
    const native = await nativeHash(threaded);
    check(p.verdict === 'identical', `threads 3, chunks 6, pinned: verdict "${p.verdict}"`);
    check(p.cards.every((c) => c.backend.includes('3 Web Workers compute the 6 chunks') && c.backend.includes('in chunk order')),
      `each run should say its 3 Web Workers combine in chunk order: ${p.cards.map((c) => c.backend).join(' | ')}`);
    check(p.cards[0].hash === native, `threads 3, chunks 6: the page gives ${p.cards[0].hash}, the native CLI ${native}`);
    log(`3 Web Workers per run, cpu_threads pinned: identical, the native CLI's hash ${native}`);

    // Phone width: nothing pushes the page wider than the screen.
    await d.viewport(PHONE);
    await d.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 200))));
    const overflow = await d.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `at ${PHONE.width} px the page scrolls sideways by ${overflow} px`);
    log(`no sideways scrolling at ${PHONE.width} px; ${await shot(d, mode, 'phone')}`);
  }
}

// One browser in one mode: launches, watches, runs the flows.
async function runOne(browserName, base, webgpu) {
  const label = `${browserName}, WebGPU ${webgpu ? 'on' : 'off'}`;
  const t0 = Date.now();
  const log = (m) => console.log(`e2e [${label}] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${m}`);
  const problems = [];
  let d;
  try {
    d = browserName === 'chromium' ? await launchChromium(webgpu) : await launchFirefox(webgpu);
    const origins = [new URL(base).origin, new URL(base.replace('127.0.0.1', INSECURE_HOST)).origin];
    d.onConsole((type, text) => {
      if (!webgpu && type === 'warning' && text === NO_ADAPTER) return;
      if (type === 'error' || type === 'warning') problems.push(`console ${type}: ${text}`);
    });
    d.onError((m) => problems.push(`uncaught error: ${m}`));
    d.onRequest((url) => {
      if (url.startsWith('data:') || url.startsWith('blob:')) return;
      if (!origins.includes(new URL(url).origin)) problems.push(`request outside the origin: ${url}`);
    });
    d.onFailed((url, why) => {
      if (url.startsWith('blob:')) return;
      problems.push(`request failed: ${url} (${why})`);
    });
    await flows(d, base, webgpu, log);
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

async function main() {
  const which = process.argv.slice(2);
  const browsers = which.length ? which : ['chromium', 'firefox'];
  const { server, address } = startServer();
  process.on('exit', () => server.kill());
  let passed = 0;
  let failed = 0;
  try {
    const base = await address;
    for (const b of browsers) {
      for (const webgpu of [true, false]) {
        if (await runOne(b, base, webgpu)) passed += 1;
        else failed += 1;
      }
    }
  } catch (e) {
    console.error(`e2e: FAILED: ${e.message}`);
    failed += 1;
  } finally {
    server.kill();
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
