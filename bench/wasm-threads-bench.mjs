// The shape benchmark of the WebAssembly-threads build (www/pkg-threads/,
// scripts/build-threads.sh) in headless Chromium, on a cross-origin isolated
// page (scripts/serve.py with ISOLATE=1): one thread against two threads of
// the pool (Web Workers sharing the engine's memory) over the same four
// chunks, per shape, printed and saved as JSON.
//
//   node bench/wasm-threads-bench.mjs [--rounds 5] [--shapes 128/64,256-256/128,1024-1024/128]
//                                     [--sample-ms 300] [--out bench/shapes-wasm-threads.json]
//
// Needs www/pkg-threads and www/pkg (make build-web; the capacity probe
// runs the plain build's inner loop) and playwright-core with the system
// Chromium (/usr/bin/chromium, or $CHROMIUM). The contenders
// (bench/wasm-threads-bench-worker.js) run interleaved round by round in one
// Web Worker of the page. Besides the shapes it measures what two Web
// Workers could gain at all on the machine as it was (the kernels' inner
// loop in two workers at once against one), before and after. Reports
// figures; asserts nothing about speed. Exit code 1 when a run fails or when
// two threads and one end on different hash chain links.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, nominalFlops, parseShapes, startServer } from './common.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function parseArgs(argv) {
  const opts = { rounds: 5, shapes: '128/64,256-256/128,1024-1024/128', sampleMs: 300, out: path.join(ROOT, 'bench/shapes-wasm-threads.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag}: needs a value`);
    if (flag === '--rounds') opts.rounds = Number(value);
    else if (flag === '--shapes') opts.shapes = value;
    else if (flag === '--sample-ms') opts.sampleMs = Number(value);
    else if (flag === '--out') opts.out = path.resolve(value);
    else throw new Error(`unknown option ${flag} (see the head of bench/wasm-threads-bench.mjs)`);
  }
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new Error('--rounds: expected a whole number >= 1');
  if (!(opts.sampleMs > 0)) throw new Error('--sample-ms: expected a positive number');
  opts.shapes = parseShapes(opts.shapes);
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { server, address } = startServer({ ISOLATE: '1' });
  let browser = null;
  try {
    const base = await address;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${base}bench/wasm-threads-bench.html`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
    if (!(await page.evaluate(() => window.isolated))) throw new Error('the page is not cross-origin isolated: no WebAssembly threads');
    const before = await page.evaluate(() => window.capacity(5));
    const raw = await page.evaluate((arg) => window.runBench(arg), { shapes: opts.shapes, rounds: opts.rounds, sampleMs: opts.sampleMs });
    const after = await page.evaluate(() => window.capacity(5));
    if (errors.length) throw new Error(`the page reported: ${errors.join('; ')}`);

    const rows = raw.results.map((r) => {
      const shape = opts.shapes.find((s) => s.name === r.shape);
      const ms = median(r.samples_ms);
      return { ...r, median_ms: ms, min_ms: Math.min(...r.samples_ms), gflops: nominalFlops(shape) / (ms * 1e6) };
    });
    const lines = [`${'shape'.padEnd(22)} ${'contender'.padEnd(10)} ${'ms/step'.padStart(9)} ${'min ms'.padStart(9)} ${'GFLOP/s'.padStart(8)}`];
    for (const r of rows) {
      lines.push(`${r.shape.padEnd(22)} ${r.contender.padEnd(10)} ${r.median_ms.toFixed(3).padStart(9)} ${r.min_ms.toFixed(3).padStart(9)} ${r.gflops.toFixed(2).padStart(8)}`);
    }
    let agree = true;
    const ratios = [];
    for (const shape of opts.shapes) {
      const of = (name) => rows.find((r) => r.shape === shape.name && r.contender === name);
      const [one, two] = [of('cpu-1x4'), of('cpu-2x4')];
      const same = one.chain_head === two.chain_head && one.steps === two.steps;
      agree &&= same;
      const ratio = one.median_ms / two.median_ms;
      ratios.push({ shape: shape.name, two_threads_over_one: ratio, over_unchunked: of('cpu-1').median_ms / two.median_ms, same_bits: same });
      lines.push(`${shape.name}: 2 WebAssembly threads ${ratio.toFixed(2)}x one over the same 4 chunks (${(of('cpu-1').median_ms / two.median_ms).toFixed(2)}x one thread unchunked); the same bits: ${same ? 'yes' : 'NO'}`);
    }
    const cap = { before: median(before), after: median(after) };
    lines.push(`parallel capacity (2 Web Workers running the kernels' inner loop at once, against one): ${cap.before.toFixed(2)}x before the shapes, ${cap.after.toFixed(2)}x after (medians of 5; 2.00x = two free cores)`);
    lines.push(`${raw.userAgent}; WebAssembly threads (www/pkg-threads), cross-origin isolated; ${opts.rounds} interleaved rounds, medians`);
    console.log(lines.join('\n'));
    const report = {
      runtime: raw.userAgent,
      build: 'www/pkg-threads (scripts/build-threads.sh)',
      rounds: opts.rounds,
      method: 'contenders interleaved round by round in one Web Worker of a cross-origin isolated page; medians of the rounds; nominal FLOPs 6 x batch x sum of layer in x out',
      results: rows,
      ratios,
      parallel_capacity: { before, after },
      bits_agree: agree,
    };
    writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
    console.log(`saved ${path.relative(ROOT, opts.out)}`);
    return agree ? 0 : 1;
  } finally {
    await browser?.close();
    server.kill();
  }
}

try {
  process.exit(await main());
} catch (e) {
  console.error(`wasm-threads-bench: ${e.message}`);
  process.exit(1);
}
