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
# software GPUs of any machine. Usage: scripts/gpu-parity.sh [OUT_DIR]
set -uo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
OUT="${1:-target/gpu-parity}"
mkdir -p "$OUT"
status=0

echo "== build"
cargo build --release --locked --bin reprolab || exit 2
command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName|apiVersion" | head -6

echo "== exact level: CPU against this GPU (probe, then 500 steps with dropout)"
cargo test --release --locked --test exact_level -- --nocapture 2>&1 | tee "$OUT/exact_level.log" |
  grep -E "GPU |CPU = GPU|level_reason|chain head|first|test result|FAILED|panicked" || true
grep -q "test result: ok" "$OUT/exact_level.log" || status=1

echo "== kernel parity and run-to-run on this GPU"
cargo test --release --locked --test gpu -- --nocapture 2>&1 | tee "$OUT/gpu.log" |
  grep -E "GPU:|max ULP|part|identical|test result|FAILED|panicked" || true
grep -q "test result: ok" "$OUT/gpu.log" || status=1

echo "== the same run through the CLI: CPU and GPU manifests, and their diff"
for backend in cpu gpu; do
  target/release/reprolab train -q --level exact --backend "$backend" --steps 500 --out "$OUT/exact-$backend.json"
  echo "exact on $backend: exit $?"
done
target/release/reprolab diff "$OUT/exact-cpu.json" "$OUT/exact-gpu.json" | tee "$OUT/diff.txt"
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
target/release/reprolab bench --backend cpu --seeds 1,2 --levels run-to-run,exact --out "$OUT/bench-cpu.json" || status=1
target/release/reprolab bench --backend gpu --seeds 1,2 --levels run-to-run,exact --out "$OUT/bench-gpu.json" || status=1
target/release/reprolab bench --shapes --rounds 3 --out "$OUT/shapes-native.json" || status=1

echo "results in $OUT (exit $status)"
exit $status
