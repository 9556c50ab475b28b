#!/usr/bin/env bash
# Optimises a wasm-bindgen output in place with the wasm-opt of npm's
# binaryen package (node_modules/.bin/wasm-opt; `npm install` puts it there).
# Debian's wasm-opt 108 breaks wasm-bindgen 0.2.130's output, so wasm-pack's
# own wasm-opt step is off (Cargo.toml) and this runs instead, from
# `make build-web` (www/pkg/) and `make package` (the package's copy).
#
#   scripts/optimize-wasm.sh FILE.wasm
#
# Prints the size before and after, raw and gzipped (zlib level 9, as
# scripts/package.mjs measures it). wasm-opt is
# deterministic: the same input and flags give the same bytes, so the page's
# wasm and the package's are the same file.

set -euo pipefail

wasm=${1:?usage: scripts/optimize-wasm.sh FILE.wasm}
root=$(cd "$(dirname "$0")/.." && pwd)
opt="$root/node_modules/.bin/wasm-opt"

if [[ ! -x $opt ]]; then
  echo "optimize-wasm: $opt is missing: run \`npm install\` (binaryen is a devDependency)" >&2
  exit 1
fi

# The features wasm-bindgen 0.2.130 and rustc emit (simd128 where the crate
# turns it on); --strip-debug drops the name section (about 164 KB).
flags=(
  -O3
  --enable-bulk-memory
  --enable-nontrapping-float-to-int
  --enable-sign-ext
  --enable-mutable-globals
  --enable-reference-types
  --enable-multivalue
  --enable-simd
  --enable-threads
  --strip-debug
)

size() { stat -c %s "$1"; }
gzsize() { node -e 'console.log(require("zlib").gzipSync(require("fs").readFileSync(process.argv[1]), { level: 9 }).length)' "$1"; }
kib() { awk -v n="$1" 'BEGIN { printf "%.1f KiB", n / 1024 }'; }

before=$(size "$wasm")
before_gz=$(gzsize "$wasm")
tmp="$wasm.opt.tmp~"
trap 'rm -f "$tmp"' EXIT
"$opt" "${flags[@]}" "$wasm" -o "$tmp"
mv "$tmp" "$wasm"
after=$(size "$wasm")
after_gz=$(gzsize "$wasm")

printf 'optimize-wasm: %s (wasm-opt %s)\n' "$wasm" "$("$opt" --version | awk '{print $3}')"
printf '  before %9d bytes (%s), gzipped %9d bytes (%s)\n' "$before" "$(kib "$before")" "$before_gz" "$(kib "$before_gz")"
printf '  after  %9d bytes (%s), gzipped %9d bytes (%s)\n' "$after" "$(kib "$after")" "$after_gz" "$(kib "$after_gz")"
