// scripts/serve.py as a child process for the browser benchmarks
// (bench/wasm-bench.mjs, bench/wasm-threads-bench.mjs): `env` adds to its
// environment (ISOLATE: '1' for a cross-origin isolated page). Resolves
// `address` to the page's base URL once the server prints it.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

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
