#!/usr/bin/env bash
# The `wasm-threads` build of the engine (www/pkg-threads/): WebAssembly
# threads, one memory shared by the Web Workers of a rayon pool
# (wasm-bindgen-rayon), so that a CPU run with threads > 1 computes its
# chunks and its update side by side without copying a weight (the plain
# build, www/pkg/, spreads chunks over Web Workers of their own memory,
# js/threads.js, copying weights and gradients every step).
#
#   scripts/build-threads.sh          build, then optimise with wasm-opt
#   scripts/build-threads.sh --lint   clippy -D warnings on the feature's code
#
# Shared memory needs the atomics target feature in every crate, the
# standard library's too: a nightly toolchain (pinned below; the standard
# library is rebuilt from its rust-src with -Z build-std), and, in the
# browser, a cross-origin isolated page (COOP/COEP headers: scripts/serve.py
# --isolate) for SharedArrayBuffer. The kernels are the same code as the
# plain build's, so the bits are the same (the page's tests compare both
# with the native CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The nightly that scripts/setup.sh installs (with rust-src and clippy).
TOOLCHAIN=nightly-2026-05-20
TARGET_DIR=target/wasm-threads
flags=(
  -C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals
  # The memory is imported and shared; 4 GiB at most (wasm32's limit).
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
  # Each thread initialises its thread-local storage (wasm-bindgen does it).
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
)
export RUSTFLAGS="${flags[*]}"
cargo_args=(--release --locked --lib --target wasm32-unknown-unknown --features wasm-threads
  -Z build-std=panic_abort,std)

if [[ ${1:-} == --lint ]]; then
  CARGO_TARGET_DIR=$TARGET_DIR cargo "+$TOOLCHAIN" clippy "${cargo_args[@]}" -- -D warnings
  exit 0
fi

CARGO_TARGET_DIR=$TARGET_DIR cargo "+$TOOLCHAIN" build "${cargo_args[@]}"
rm -rf www/pkg-threads
wasm-bindgen --target web --out-dir www/pkg-threads "$TARGET_DIR/wasm32-unknown-unknown/release/reprolab.wasm"
# wasm-bindgen-rayon's pool workers start the glue with positional
# arguments, which this wasm-bindgen's glue accepts but warns about on the
# console, once per worker: pass the one object it asks for.
helper=(www/pkg-threads/snippets/wasm-bindgen-rayon-*/src/workerHelpers.no-bundler.js)
old='await pkg.default(data.module, data.memory);'
if ! grep -qF "$old" "${helper[0]}"; then
  echo "build-threads: ${helper[0]} no longer has \`$old\`: check the patch below" >&2
  exit 1
fi
sed -i "s/await pkg.default(data.module, data.memory);/await pkg.default({ module_or_path: data.module, memory: data.memory });/" "${helper[0]}"
scripts/optimize-wasm.sh www/pkg-threads/reprolab_bg.wasm
