// The shape benchmark of the CPU engine's WebAssembly build in headless
// Chromium: the same shapes, runs and figures as the native one
// (src/bench.rs, `reprolab bench --shapes`), printed and saved as JSON.
//
//   node bench/wasm-bench.mjs [--rounds 5] [--shapes 128/64,256-256/128,1024-1024/128]
//                             [--sample-ms 300] [--out bench/shapes-wasm.json]
//                             [--native bench/shapes-native.json] [--before DIR]
//                             [--webgpu on|off] [--paired N]
//
// Needs www/pkg (make build-web) and playwright-core with the system
// Chromium (/usr/bin/chromium, or $CHROMIUM). Serves the repository with
// scripts/serve.py and opens bench/wasm-bench.html, whose module
// (wasm-bench-page.js) runs the contenders interleaved round by round:
// cpu-1 scalar (the reference kernels), cpu-1 simd, cpu-1x4 simd (one
// thread, the batch cut into four chunks: the page's main thread computes
// them) and cpu-2x4 simd (two threads over the same four chunks, the page's
// main thread computing two of them and one Web Worker the other two: the
// same bits as cpu-1x4, checked). Besides wall-clock time it reads the CPU
// time of the threads that run the page's code (Linux /proc: the renderer's
// main thread and its Web Workers, not V8's background compiler) before and
// after every sample, so that figures on a busy machine can be read per
// core. With a native result file for the same shapes it prints wasm /
// native per contender. It prints two threads against one, per
// shape, and what two Web Workers could gain at all on the machine as it
// was: the kernels' inner loop in two workers at once against one
// (bench/peak-worker.js), before and after the shapes. `--before DIR` adds the contender `before cpu-1`:
// the same runs on another wasm-pack build (an older commit's www/pkg, say),
// `--webgpu on` the contender `webgpu`: the GPU engine through Chromium's
// WebGPU (--enable-unsafe-webgpu; Dawn on SwiftShader here), strict `gpu`;
// linked at bench/pkg-before for the time of the run. `--paired N` then
// measures wasm / native in N rounds of the native CLI and the page one
// after the other (target/release/reprolab, built first), so that a slow
// spell of the machine falls on both sides of each ratio. Reports figures;
// asserts nothing about speed. Exit code 1 when a run fails or when the
// scalar and SIMD kernels, or one thread and two Web Workers over the same
// chunks, end on different hash chain links.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, nominalFlops, parseShapes, startServer } from './common.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function parseArgs(argv) {
  const opts = {
    rounds: 5,
    shapes: '128/64,256-256/128,1024-1024/128',
    sampleMs: 300,
    out: path.join(ROOT, 'bench/shapes-wasm.json'),
    native: path.join(ROOT, 'bench/shapes-native.json'),
    before: null,
    webgpu: false,
    paired: 0,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag}: needs a value`);
    if (flag === '--rounds') opts.rounds = Number(value);
    else if (flag === '--shapes') opts.shapes = value;
    else if (flag === '--sample-ms') opts.sampleMs = Number(value);
    else if (flag === '--out') opts.out = path.resolve(value);
    else if (flag === '--native') opts.native = path.resolve(value);
    else if (flag === '--before') opts.before = path.resolve(value);
    else if (flag === '--paired') opts.paired = Number(value);
    else if (flag === '--webgpu') {
      if (value !== 'on' && value !== 'off') throw new Error(`--webgpu: expected on or off, got ${value}`);
      opts.webgpu = value === 'on';
    }
    else throw new Error(`unknown option ${flag} (see the head of bench/wasm-bench.mjs)`);
  }
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new Error(`--rounds: expected a whole number >= 1`);
  if (!(opts.sampleMs > 0)) throw new Error(`--sample-ms: expected a positive number`);
  if (!Number.isInteger(opts.paired) || opts.paired < 0) throw new Error(`--paired: expected a whole number >= 0`);
  return opts;
}

// src/bench.rs assumed_peak_gflops: 8 flop/cycle/core x the clock /proc/cpuinfo
// reports (used only when neither the native result nor this run measured one).
function assumedPeak() {
  let ghz = null;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('cpu MHz'));
    ghz = Number(line.split(':')[1]) / 1000;
  } catch {}
  const [g, source] = ghz > 0 ? [ghz, 'the clock the OS reports'] : [3.0, 'an assumed clock'];
  return [
    8 * g,
    `8 flop/cycle/core (4 f32 lanes x 1 mul + 1 add per cycle, no FMA) x ${g.toFixed(2)} GHz (${source}) = ${(8 * g).toFixed(1)} GFLOP/s per core`,
  ];
}

// ---- CPU time of the browser's renderers (Linux /proc) ------------------------

function procs() {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      out.push({ pid: Number(d), ppid, cmdline });
    } catch {} // gone meanwhile
  }
  return out;
}

// The renderer processes below the browser whose command line holds `marker`.
function renderers(marker) {
  const all = procs();
  const root = all.find((p) => p.cmdline.includes(marker) && !p.cmdline.includes('--type='));
  if (!root) return [];
  const below = new Set([root.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!below.has(p.pid) && below.has(p.ppid)) {
        below.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => below.has(p.pid) && p.cmdline.includes('--type=renderer')).map((p) => p.pid);
}

// Milliseconds on a CPU of the threads of `pids` that run the page's code:
// each renderer's main thread and its Web Workers ("DedicatedWorker"), not
// the thread pool where V8 compiles in the background (schedstat's first
// field, ns).
function cpuMs(pids) {
  let ns = 0;
  for (const pid of pids) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const name = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
        if (t !== String(pid) && name !== 'DedicatedWorker') continue;
        ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {}
    }
  }
  return ns / 1e6;
}

// ---- the server and the browser ------------------------------------------------


// `--paired N`: N rounds, each one round of the native CLI's shapes bench
// (target/release/reprolab bench --shapes --rounds 1) and then one round of
// the page's `cpu-1 simd`, so that a slow spell of a shared machine falls on
// both sides of a ratio; per shape the ratio of each round and their median.
async function pairedRounds(page, shapes, opts) {
  const cli = path.join(ROOT, 'target/release/reprolab');
  if (!existsSync(cli)) throw new Error('--paired: target/release/reprolab is missing: run `cargo build --release` first');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'reprolab-paired-'));
  const ratios = shapes.map(() => []);
  try {
    for (let round = 0; round < opts.paired; round++) {
      const out = path.join(dir, 'native.json');
      execFileSync(cli, ['bench', '--shapes', '--rounds', '1', '--gpu', 'none', '--shape-list', opts.shapes, '--out', out], { stdio: 'ignore' });
      const native = JSON.parse(readFileSync(out, 'utf8'));
      const raw = await page.evaluate((arg) => window.runBench(arg), {
        shapes,
        contenders: [{ name: 'cpu-1 simd', threads: 1, chunks: 1, kernels: 'simd' }],
        rounds: 1,
        sampleMs: opts.sampleMs,
      });
      shapes.forEach((s, i) => {
        const n = native.results.find((r) => r.shape === s.name && r.contender === 'cpu-1 simd');
        const w = raw.results.find((r) => r.shape === s.name);
        if (n && w) ratios[i].push(median(w.samples_ms) / n.median_ms);
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    what: 'wasm / native for cpu-1 simd, each round one round of the native CLI then one of the page, back to back; the median of the rounds\' ratios',
    shapes: shapes.map((s, i) => ({ shape: s.name, ratios: ratios[i], median: median(ratios[i]) })),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const shapes = parseShapes(opts.shapes);
  if (!existsSync(path.join(ROOT, 'www/pkg/reprolab_bg.wasm'))) {
    throw new Error('www/pkg/reprolab_bg.wasm is missing: run `make build-web` first');
  }
  const contenders = [
    { name: 'cpu-1 scalar', threads: 1, chunks: 1, kernels: 'scalar' },
    { name: 'cpu-1 simd', threads: 1, chunks: 1, kernels: 'simd' },
    { name: 'cpu-1x4 simd', threads: 1, chunks: 4, kernels: 'simd' },
    { name: 'cpu-2x4 simd', threads: 2, chunks: 4, kernels: 'simd' },
  ];
  // `--webgpu on`: the GPU engine too, through the browser's WebGPU (Dawn on
  // SwiftShader here), strict (`gpu`): a run fails rather than fall back.
  if (opts.webgpu) contenders.push({ name: 'webgpu', threads: 1, chunks: 1, kernels: 'simd', backend: 'gpu' });
  const link = path.join(ROOT, 'bench/pkg-before');
  if (opts.before) {
    if (!existsSync(path.join(opts.before, 'reprolab.js'))) throw new Error(`--before: no reprolab.js in ${opts.before}`);
    if (existsSync(link)) throw new Error(`bench/pkg-before exists: remove it first`);
    symlinkSync(opts.before, link);
    contenders.unshift({ name: 'before cpu-1', threads: 1, chunks: 1, kernels: 'simd', build: 'before' });
  }
  const { server, address } = startServer();
  let browser = null;
  try {
    const base = await address;
    const { chromium } = await import('playwright-core');
    const marker = `--reprolab-bench=${process.pid}-${Date.now()}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        opts.webgpu ? '--enable-unsafe-webgpu' : '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        marker,
      ],
    });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.exposeFunction('cpuNow', () => {
      const pids = renderers(marker);
      return pids.length ? cpuMs(pids) : null;
    });
    await page.goto(`${base}bench/wasm-bench.html`);
    await page.waitForFunction(() => window.benchReady !== undefined, null, { timeout: 30_000 });
    await page.evaluate(() => window.benchReady);
    const raw = await page.evaluate((arg) => window.runBench(arg), {
      shapes,
      contenders,
      rounds: opts.rounds,
      sampleMs: opts.sampleMs,
    });
    if (errors.length) throw new Error(`the page reported: ${errors.join('; ')}`);
    const paired = opts.paired ? await pairedRounds(page, shapes, opts) : null;
    if (errors.length) throw new Error(`the page reported: ${errors.join('; ')}`);

    const native = existsSync(opts.native) ? JSON.parse(readFileSync(opts.native, 'utf8')) : null;
    // The machine's peak: the native measurement when there is one (the
    // same loop compiled natively), else this run's wasm measurement.
    const wasmPeak = raw.peak.gflops;
    const wasmPeakWords = `measured in wasm: ${wasmPeak.toFixed(1)} GFLOP/s per core, the best of 5 runs of the kernels' inner loop on data in L1 (${raw.simd}; ${raw.peak.byCpu ? 'CPU' : 'wall-clock'} time)`;
    let peak = wasmPeak;
    let peakAssumption = wasmPeakWords;
    if (native?.peak_gflops_per_core > 0 && String(native.peak_assumption).startsWith('measured')) {
      peak = native.peak_gflops_per_core;
      peakAssumption = `native ${native.peak_assumption}; ${wasmPeakWords}`;
    } else if (!(peak > 0)) {
      [peak, peakAssumption] = assumedPeak();
    }
    const results = raw.results.map((r) => {
      const flops = nominalFlops(shapes.find((s) => s.name === r.shape));
      const med = median(r.samples_ms);
      const gflops = flops / (med * 1e6);
      const gpu = r.backend === 'gpu';
      // A GPU step's work runs in the GPU process, not the renderer: no CPU figure.
      const cpu = !gpu && r.cpu_samples_ms ? median(r.cpu_samples_ms) : null;
      const perCore = cpu ? flops / (cpu * 1e6) : null;
      const twin = gpu ? null : native?.results?.find((n) => n.shape === r.shape && n.contender === r.contender);
      return {
        ...r,
        backend: gpu ? `gpu (WebGPU: ${r.adapter ?? 'adapter unknown'})` : 'cpu (wasm)',
        median_ms: med,
        min_ms: Math.min(...r.samples_ms),
        gflops,
        peak_fraction: gflops / (peak * r.threads),
        cpu_ms: cpu,
        gflops_per_core: perCore,
        peak_fraction_per_core: perCore ? perCore / peak : null,
        wasm_over_native: twin ? med / twin.median_ms : null,
        wasm_over_native_cpu: twin && cpu && twin.cpu_ms ? cpu / twin.cpu_ms : null,
      };
    });
    const agree = shapes.every((s) =>
      // One chunk, whichever build or kernels: the same bits; four chunks,
      // on the main thread alone or with a Web Worker (cpu_threads pinned): the
      // same bits. (The GPU engine rounds exp, log and tanh its own way:
      // not compared.)
      [1, 4].every((chunks) => {
        const heads = results
          .filter((r) => r.shape === s.name && r.chunks === chunks && r.backend === 'cpu (wasm)')
          .map((r) => r.chain_head);
        return heads.every((h) => h === heads[0]);
      }),
    );
    // Two threads (the main thread and a Web Worker) against one (wall clock, medians of the same run).
    const speedups = shapes
      .map((s) => {
        const ms = (name) => results.find((r) => r.shape === s.name && r.contender === name)?.median_ms;
        const [one, oneChunked, two] = [ms('cpu-1 simd'), ms('cpu-1x4 simd'), ms('cpu-2x4 simd')];
        return two ? { shape: s.name, over_cpu_1: one / two, over_cpu_1x4: oneChunked / two } : null;
      })
      .filter(Boolean);
    const report = {
      runtime: raw.userAgent,
      simd: raw.simd,
      rounds: opts.rounds,
      peak_gflops_per_core: peak,
      peak_assumption: peakAssumption,
      wasm_peak_gflops_per_core: wasmPeak,
      method:
        'headless Chromium, www/pkg through its public API; digits, defaults otherwise (ReLU, dropout 0.1, engine v2), ' +
        'no validation in the timed steps; contenders interleaved round by round; ms per step is the median over rounds ' +
        '(wall clock, performance.now); cpu ms is the CPU time of the renderer main thread and Web Workers per step',
      native_file: native ? path.relative(ROOT, opts.native) : null,
      native_runtime: native?.runtime ?? null,
      results,
      workers_speedup: speedups,
      parallel_capacity: {
        what:
          'two Web Workers running the kernels\' inner loop at once against one: 2 x (one\'s wall time) / (two\'s), 5 tries before the shapes and 5 after; 2 where two cores are free, 1 where they share one core\'s time: the most two workers could gain over one thread then',
        before: raw.capacity.before,
        after: raw.capacity.after,
        median_before: median(raw.capacity.before),
        median_after: median(raw.capacity.after),
      },
      bits_agree: agree,
      paired,
    };
    const fmt = (v, d) => (v === null || v === undefined ? '-' : v.toFixed(d));
    const lines = [
      `${'shape'.padEnd(22)} ${'contender'.padEnd(14)} ${'ms/step'.padStart(9)} ${'min ms'.padStart(9)} ${'GFLOP/s'.padStart(8)} ${'peak'.padStart(6)} | ${'cpu ms'.padStart(9)} ${'GF/core'.padStart(8)} ${'peak'.padStart(6)} | ${'/native'.padStart(7)} ${'cpu'.padStart(5)}`,
    ];
    for (const r of results) {
      lines.push(
        `${r.shape.padEnd(22)} ${r.contender.padEnd(14)} ${fmt(r.median_ms, 3).padStart(9)} ${fmt(r.min_ms, 3).padStart(9)} ${fmt(r.gflops, 2).padStart(8)} ${(fmt(100 * r.peak_fraction, 1) + '%').padStart(6)} | ${fmt(r.cpu_ms, 3).padStart(9)} ${fmt(r.gflops_per_core, 2).padStart(8)} ${(r.peak_fraction_per_core === null ? '-' : fmt(100 * r.peak_fraction_per_core, 1) + '%').padStart(6)} | ${fmt(r.wasm_over_native, 2).padStart(7)} ${fmt(r.wasm_over_native_cpu, 2).padStart(5)}`,
      );
    }
    const cap = report.parallel_capacity;
    lines.push(
      `parallel capacity (2 Web Workers running the kernels' inner loop at once, against one): ${cap.median_before.toFixed(2)}x before the shapes, ${cap.median_after.toFixed(2)}x after (medians of 5; 2.00x = two free cores)`,
    );
    for (const w of speedups) {
      lines.push(`${w.shape}: 2 threads (cpu-2x4: the main thread and 1 Web Worker) ${w.over_cpu_1.toFixed(2)}x cpu-1, ${w.over_cpu_1x4.toFixed(2)}x cpu-1x4 (wall clock)`);
    }
    for (const q of paired?.shapes ?? []) {
      lines.push(
        `${q.shape}: wasm / native ${q.median.toFixed(2)} paired (cpu-1 simd, ${q.ratios.length} rounds of the native CLI and the page one after the other: ${q.ratios.map((v) => v.toFixed(2)).join(', ')})`,
      );
    }
    lines.push(
      `${report.runtime}; ${report.simd}; ${opts.rounds} interleaved rounds, medians; peak: ${peakAssumption}; ` +
        `kernels and Web Workers agree bit for bit: ${agree ? 'yes' : 'NO'}${native ? `; /native against ${report.native_file}` : ''}`,
    );
    console.log(lines.join('\n'));
    writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
    console.log(`saved ${path.relative(ROOT, opts.out)}`);
    if (!agree) process.exitCode = 1;
  } finally {
    await browser?.close();
    server.kill();
    if (opts.before) unlinkSync(link);
  }
}

main().catch((e) => {
  console.error(`wasm-bench: ${e.message}`);
  process.exit(1);
});
