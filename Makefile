# Entry point. `make demo` builds and serves the page; `make test` runs every
# test. Both install what they need first (scripts/setup.sh), skipping what is
# already there.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Mesa's Vulkan drivers print an error on every start without it.
export XDG_RUNTIME_DIR ?= /tmp
SWIFTSHADER_ICD := /usr/lib/chromium/vk_swiftshader_icd.json

WASM_PACK_BUILD := wasm-pack build --release --target web --out-dir www/pkg --no-pack

.PHONY: demo test test-fast setup build-web bench lint test-native test-browsers test-page package test-package test-reference test-aarch64 clean

setup:
	@scripts/setup.sh

## Build the wasm for the page (www/pkg/), optimised by npm binaryen's
## wasm-opt (scripts/optimize-wasm.sh prints the size before and after), and
## its WebAssembly-threads build (www/pkg-threads/, scripts/build-threads.sh:
## nightly Rust), which CPU runs with threads > 1 take on an isolated page.
build-web: setup
	$(WASM_PACK_BUILD)
	scripts/optimize-wasm.sh www/pkg/reprolab_bg.wasm
	scripts/build-threads.sh

## Build and serve the demo on 127.0.0.1 (prints its address; Ctrl-C stops),
## cross-origin isolated: CPU threads share one memory (WebAssembly threads).
demo: build-web
	@ISOLATE=1 python3 scripts/serve.py

## Every test: format, lints (native and wasm32), native tests, browser tests
## (Chromium and Firefox, headless), the page end to end, the npm
## package's consumer test, the reference implementation's retrace and the
## aarch64 build under qemu.
test: setup lint test-native test-browsers test-page test-package test-reference test-aarch64
	@echo "make test: all passed"

## The inner loop: unit tests, golden trajectories, gradient check, CLI and
## switches on the CPU (GPU tests skipped, no browsers).
test-fast:
	cargo test --release --locked --lib --test golden --test gradient_check --test cli --test determinism --test switches -- --skip gpu --skip lost_device

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings
	cargo clippy --lib --tests --target wasm32-unknown-unknown --locked -- -D warnings
	scripts/build-threads.sh --lint

## Native tests; the GPU ones run on lavapipe (the default Vulkan driver
## here) and again on SwiftShader (Chromium's Vulkan driver).
test-native:
	cargo test --release --locked
	VK_ICD_FILENAMES=$(SWIFTSHADER_ICD) cargo test --release --locked --test gpu

# wasm-bindgen-test stops a browser run after 20 s by default; the WebGPU
# suite on a software adapter takes longer than that on a busy 2-core machine.
test-browsers: export WASM_BINDGEN_TEST_TIMEOUT = 600
test-browsers:
	wasm-pack test --headless --release --chrome --chromedriver /usr/bin/chromedriver
	wasm-pack test --headless --release --firefox

## The page end to end in headless Chromium (playwright-core) and Firefox
## (puppeteer-core over WebDriver BiDi), with WebGPU on and off; its Web
## Worker check compares with the native CLI, built first.
test-page: build-web
	cargo build --release --locked --bin reprolab
	node tests/page/e2e.mjs

## The npm package: dist/reprolab-<version>.tgz, holding the wasm of
## build-web (optimised the same way: the same bytes), its glue rebuilt with
## a reset function (a fresh instance after a panic), the wrapper and types
## of js/ and js/README.md. Prints the wasm's size before and after wasm-opt
## and the package's, raw and gzipped.
PACKAGE_STAGE := target/npm/reprolab
package: build-web
	rm -rf $(PACKAGE_STAGE) && mkdir -p $(PACKAGE_STAGE)/pkg
	wasm-bindgen --target web --experimental-reset-state-function --no-typescript \
	  --out-dir $(PACKAGE_STAGE)/pkg target/wasm32-unknown-unknown/release/reprolab.wasm
	scripts/optimize-wasm.sh $(PACKAGE_STAGE)/pkg/reprolab_bg.wasm
	node scripts/package.mjs $(PACKAGE_STAGE)

## Installs the tarball into a fresh project and uses it as a consumer would:
## Node.js (the native CLI's hash chain and diff, the whole API, the heap
## under forced garbage collection), a Vite page in headless Chromium and
## Firefox (WebGPU and CPU, timers during training, pause/cancel/abort,
## offline after init), tsc --strict against the types and on every README
## example, invalid settings and a panic, and every ```js example run.
test-package: package
	cargo build --release --locked --bin reprolab
	node tests/package/consumer.mjs

## The independent reference implementation (Python + numpy, written from
## src/spec.rs) retraces pinned CLI runs with dropout bit for bit (engine
## versions 1 and 2, ReLU and tanh, chunks 1 and 3), its exp/log/tanh match the
## locked libm crate's, and a flipped bit anywhere is reported (target/reference/).
test-reference:
	tests/reference/run.sh

## The eighth stack: the CLI built for aarch64-unknown-linux-gnu and run under
## qemu-aarch64 gives the host build's hash chains bit for bit (pinned 500-step
## digits runs with dropout at levels none, run-to-run and exact; ReLU, tanh in
## engine version 1, 2 threads with 4 chunks); the host build replays every
## aarch64 manifest, a free-seed aarch64 run included (target/aarch64-parity/).
test-aarch64:
	tests/aarch64/run.sh

## Speed: the CPU kernels per shape natively and in headless Chromium (wasm),
## every contender interleaved (bench/shapes-native.json, shapes-wasm.json),
## and the WebAssembly-threads build's one thread against two on a cross-origin
## isolated page (shapes-wasm-threads.json); the GPU per shape, the matrix kernels before (reference) and after
## (default) register blocking interleaved, with a per-kernel profile, on
## the default Vulkan driver (lavapipe here, in shapes-native.json) and on
## SwiftShader (shapes-gpu-swiftshader.json); then the defaults for seeds
## 1-5 on the CPU and on the GPU (lavapipe here; bench/cpu.json, gpu.json),
## then the soak: runs of 10^4, 10^5 and 10^6 steps (hidden=8, a checkpoint
## every 1000 steps), each in a child process, with their peak memory,
## manifest and checkpoint bytes (bench/soak.json; 2 to 7 minutes here, most
## of it the 10^6-step run). Figures are reported, never asserted.
bench: build-web
	cargo build --release --locked
	target/release/reprolab bench --shapes --gpu reference,default --out bench/shapes-native.json
	VK_ICD_FILENAMES=$(SWIFTSHADER_ICD) target/release/reprolab bench --shapes --backend gpu --gpu reference,default --out bench/shapes-gpu-swiftshader.json
	node bench/wasm-bench.mjs --native bench/shapes-native.json --webgpu on --paired 5 --out bench/shapes-wasm.json
	node bench/wasm-threads-bench.mjs --out bench/shapes-wasm-threads.json
	target/release/reprolab bench --backend cpu --seeds 1,2,3,4,5 --levels run-to-run,exact --out bench/cpu.json
	target/release/reprolab bench --backend gpu --seeds 1,2,3,4,5 --levels run-to-run,exact --out bench/gpu.json
	target/release/reprolab bench --soak 10000,100000,1000000 --out bench/soak.json

clean:
	cargo clean
	rm -rf www/pkg www/pkg-threads node_modules dist
