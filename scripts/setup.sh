#!/usr/bin/env bash
# Installs everything `make demo` and `make test` need on a bare Debian 12
# machine with Rust by rustup, skipping each piece that is already present.
# What is installed, and why each version, is in ../shared/docs/TOOLCHAIN.md
# (copied into README.md's "Toolchain" section so a lone clone has it).
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[setup] %s\n' "$*" >&2; }

# wasm-bindgen-cli must match the wasm-bindgen crate exactly: read the version
# from Cargo.lock (the crate is pinned with `=` in Cargo.toml).
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

# 1. Debian packages: browsers with WebGPU (and their WebDriver), Mesa's lavapipe;
#    the aarch64 cross linker, its C library and qemu-user for `make test-aarch64`.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v firefox-esr >/dev/null 2>&1 || need_apt+=(firefox-esr)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/crt1.o ] || need_apt+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
  log "browsers, drivers and the aarch64 cross tools already installed"
fi

# 2. Rust targets: the browser build, and the aarch64 build that
#    `make test-aarch64` runs under qemu-aarch64.
for triple in wasm32-unknown-unknown aarch64-unknown-linux-gnu; do
  if rustup target list --installed | grep -qx "$triple"; then
    log "$triple already installed"
  else
    log "rustup target add $triple"
    rustup target add "$triple"
  fi
done

# 2b. The pinned nightly of the WebAssembly-threads build
#     (scripts/build-threads.sh): its standard library is rebuilt with
#     atomics from rust-src; clippy for `make lint`.
NIGHTLY=$(awk -F= '/^TOOLCHAIN=/{print $2}' scripts/build-threads.sh)
if rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 &&
  rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src' &&
  rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^clippy'; then
  log "$NIGHTLY (rust-src, clippy) already installed"
else
  log "rustup toolchain install $NIGHTLY (rust-src, clippy)"
  rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src,clippy
fi

# 3. Cargo-installed tools. No --locked for wasm-bindgen-cli (TOOLCHAIN.md).
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$WBG_VERSION" ]; then
  log "wasm-bindgen-cli $WBG_VERSION already installed"
else
  log "cargo install wasm-bindgen-cli $WBG_VERSION (about 4 minutes)"
  cargo install -q wasm-bindgen-cli --version "$WBG_VERSION" --force
fi
if command -v wasm-pack >/dev/null 2>&1; then
  log "wasm-pack already installed"
else
  log "cargo install wasm-pack (about 3 minutes)"
  cargo install -q wasm-pack
fi
if command -v geckodriver >/dev/null 2>&1; then
  log "geckodriver already installed"
else
  log "cargo install geckodriver (about 3 minutes)"
  cargo install -q geckodriver
fi
# 4. npm packages of the page tests (playwright-core and puppeteer-core drive
#    the system browsers; uPlot is vendored into the page), reinstalled when
#    package-lock.json changed.
if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm packages already installed"
else
  log "npm ci"
  npm ci --no-audit --no-fund --silent
fi
# 5. numpy for the reference implementation (tests/reference/). The python3
#    on PATH may be Debian's (numpy from apt: its pip refuses system-wide
#    installs) or another one (pyenv, a venv: numpy from its own pip).
if python3 -c 'import numpy' 2>/dev/null; then
  log "numpy already installed"
elif [ "$(python3 -c 'import sys; print(sys.prefix)')" = /usr ]; then
  log "apt-get install python3-numpy"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-numpy >/dev/null
else
  log "python3 -m pip install numpy"
  python3 -m pip install -q numpy
fi
log "toolchain ready"
