#!/usr/bin/env bash
# The GPU checks on whatever GPU this machine has (a real one: NVIDIA, AMD,
# Intel through Vulkan), in one call, ready for a machine lent for minutes:
#   1. builds natively (release);
#   2. the start-up probe of the `exact` level on this adapter (it names the
#      check that fails, e.g. a fused a*b+c);
#   3. the parity test: a pinned 500-step digits run with dropout at `exact`
#      on the CPU and on this GPU, every hash-chain link compared, the first
#      step, tensor and index that differ printed; the kernel parity and
#      run-to-run tests of tests/gpu.rs;
#   4. the chain heads, printed for comparison with the CPU's, and the bench
#      per level (ms a step, exact against run-to-run).
# Nothing here is needed by `make test`, which runs the same tests on the
# software GPUs of any machine.
#
# Usage: scripts/gpu-parity.sh [OUT_DIR]
# A GPU machine without Rust: build here with `scripts/gpu-parity.sh --pack
# DIR` (the CLI and the two test programs, release, copied into DIR), carry
# DIR there and run `REPROLAB_PREBUILT=DIR scripts/gpu-parity.sh OUT_DIR`.
set -uo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ "${1:-}" = "--pack" ]; then
  dir="${2:?usage: scripts/gpu-parity.sh --pack DIR}"
  mkdir -p "$dir"
  cargo build --release --locked --bin reprolab || exit 2
  cp target/release/reprolab "$dir/" || exit 2
  for t in exact_level gpu; do
    exe=$(cargo test --release --locked --no-run --test "$t" --message-format=json 2>/dev/null |
      python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' | tail -1)
    [ -n "$exe" ] && cp "$exe" "$dir/$t" || { echo "could not build the test $t"; exit 2; }
  done
  ls -la "$dir"
  exit 0
fi
OUT="${1:-target/gpu-parity}"
mkdir -p "$OUT"
status=0
PRE="${REPROLAB_PREBUILT:-}"
if [ -n "$PRE" ]; then
  # The test programs look for shaders/ through the path they were built in.
  BIN="$PRE/reprolab"
  run_test() { "$PRE/$1" --nocapture; }
else
  echo "== build"
  cargo build --release --locked --bin reprolab || exit 2
  BIN=target/release/reprolab
  run_test() { cargo test --release --locked --test "$1" -- --nocapture; }
fi
command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName|apiVersion" | head -6

echo "== exact level: CPU against this GPU (probe, then 500 steps with dropout)"
run_test exact_level 2>&1 | tee "$OUT/exact_level.log" |
  grep -E "GPU |CPU = GPU|level_reason|chain head|first|test result|FAILED|panicked" || true
grep -q "test result: ok" "$OUT/exact_level.log" || status=1

echo "== kernel parity and run-to-run on this GPU"
run_test gpu 2>&1 | tee "$OUT/gpu.log" |
  grep -E "GPU:|max ULP|part|identical|test result|FAILED|panicked" || true
grep -q "test result: ok" "$OUT/gpu.log" || status=1

echo "== the same run through the CLI: CPU and GPU manifests, and their diff"
for backend in cpu gpu; do
  "$BIN" train -q --level exact --backend "$backend" --steps 500 --out "$OUT/exact-$backend.json"
  echo "exact on $backend: exit $?"
done
"$BIN" diff "$OUT/exact-cpu.json" "$OUT/exact-gpu.json" | tee "$OUT/diff.txt"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for b in ("cpu", "gpu"):
    try:
        m = json.load(open(f"{out}/exact-{b}.json"))
    except OSError:
        continue
    print(f"{b}: level {m['level_granted']} ({m['level_reason'][:160]}), steps {m['steps_completed']}, "
          f"chain head {m['hash_chain'][-1] if m['hash_chain'] else '-'}, adapter {m['adapter']}")
PY

echo "== bench: exact against run-to-run, per backend"
"$BIN" bench --backend cpu --seeds 1,2 --levels run-to-run,exact --out "$OUT/bench-cpu.json" || status=1
"$BIN" bench --backend gpu --seeds 1,2 --levels run-to-run,exact --out "$OUT/bench-gpu.json" || status=1
"$BIN" bench --shapes --rounds 3 --gpu reference,unfused,default --out "$OUT/shapes-native.json" || status=1

echo "results in $OUT (exit $status)"
exit $status
