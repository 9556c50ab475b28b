// What the browser benchmarks (bench/wasm-bench.mjs,
// bench/wasm-threads-bench.mjs) share: the shapes as src/bench.rs reads and
// counts them, the median, and scripts/serve.py as a child process.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The digits data set's features and classes: a network's first and last widths. */
export const INPUTS = 64;
export const CLASSES = 10;

// `HIDDEN/BATCH,...` as src/bench.rs parse_shapes reads it.
export function parseShapes(text) {
  return text
    .split(',')
    .filter((p) => p.trim())
    .map((part) => {
      const m = part.trim().match(/^(\d+(?:-\d+)*)\/(\d+)$/);
      if (!m) throw new Error(`shapes: expected HIDDEN/BATCH like 256-256/128, got ${JSON.stringify(part)}`);
      const hidden = m[1].split('-').map(Number);
      const batch = Number(m[2]);
      return { hidden, batch, name: `${[INPUTS, ...hidden, CLASSES].join('-')} b${batch}` };
    });
}

// 6 x batch x sum of layer in x out (src/bench.rs nominal_flops).
export function nominalFlops(shape) {
  const widths = [INPUTS, ...shape.hidden, CLASSES];
  let macs = 0;
  for (let i = 1; i < widths.length; i++) macs += widths[i - 1] * widths[i];
  return 6 * shape.batch * macs;
}

export const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// scripts/serve.py as a child process: `env` adds to its environment
// (ISOLATE: '1' for a cross-origin isolated page). Resolves `address` to the
// page's base URL once the server prints it.
export function startServer(env = {}) {
  const server = spawn('python3', [path.join(ROOT, 'scripts/serve.py')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const address = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('scripts/serve.py printed no address within 10 s')), 10_000);
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
      reject(new Error(`scripts/serve.py exited (code ${code})`));
    });
  });
  return { server, address };
}
