#!/usr/bin/env bash
# Regenerates the seed corpus of tests/fuzz.rs from real runs of the CLI:
# manifests (every data set, free sources, threads and chunks, a config file,
# recorded batches, a stopped run, a GPU run when there is one), checkpoints
# and config files. Run from the repository root after `cargo build --release`:
#   tests/fuzz/corpus/make.sh [path/to/reprolab]
# The fuzzer's own regression inputs (regress-*) are kept as they are.
set -euo pipefail
B=${1:-target/release/reprolab}
C=tests/fuzz/corpus
mkdir -p "$C/manifest" "$C/checkpoint" "$C/config"
T=$(mktemp -d "${CARGO_TARGET_TMPDIR:-target}/corpus.XXXXXX")
trap 'rm -rf "$T"' EXIT
train() { "$B" train --quiet --backend cpu "$@"; }

# Config files: every key, lists and strings, numbers as text, a version.
cat > "$C/config/all-keys.json" <<'J'
{"version": 1, "dataset": "digits@1", "hidden": [16, 8], "activation": "tanh", "dropout": 0.25,
 "learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.001, "batch_size": 16, "steps": 30,
 "val_fraction": 0.25, "seed": 7, "eval_every": 5, "engine_version": 1, "threads": 2, "chunks": 4}
J
echo '{"hidden": "32,32", "learning_rate": "0.05", "steps": "40"}' > "$C/config/strings.json"
echo '{"dataset": "spiral", "hidden": 8, "batch_size": 64, "seed": 9007199254740991}' > "$C/config/spiral.json"
echo '{"dataset": "xor", "hidden": "", "dropout": 0, "momentum": 0, "weight_decay": 0}' > "$C/config/xor-no-hidden.json"
echo '{}' > "$C/config/empty.json"

# Manifests.
train --steps 20 --out "$C/manifest/digits-default.json"
train --config "$C/config/all-keys.json" --record-batches --out "$C/manifest/digits1-config-batches.json"
train --set dataset=spiral --set hidden=6 --set batch_size=16 --steps 25 --set eval_every=5 --free init --free dropout \
  --out "$C/manifest/spiral-free.json"
train --set dataset=xor --set hidden= --steps 10 --set eval_every=3 --out "$C/manifest/xor-no-hidden.json"
train --set dataset=circles --set hidden=4,4 --set activation=tanh --steps 12 --set threads=2 --set chunks=3 \
  --set batch_size=9 --free cpu_threads --out "$C/manifest/circles-threads.json"
train --set dataset=gaussians --set hidden=3 --steps 8 --free hparam_drift --free data_drift --free engine_version \
  --set learning_rate=0.2 --out "$C/manifest/gaussians-drift.json"
train --set hidden=8 --steps 30 --set weight_decay=1e30 --out "$C/manifest/stopped-weight-decay.json" || true
if "$B" train --quiet --backend gpu --set hidden=8 --steps 10 --out "$T/gpu.json" 2>/dev/null; then
  cp "$T/gpu.json" "$C/manifest/gpu.json"
fi

# Checkpoints (small networks keep them small).
train --set dataset=xor --set hidden=4 --steps 20 --set eval_every=4 --checkpoint-every 10 --checkpoint-dir "$T/ck1" \
  --out "$T/ck1.json"
cp "$T/ck1/step-00000010.checkpoint.json" "$C/checkpoint/xor-10.json"
train --set hidden=8 --set batch_size=16 --steps 40 --set eval_every=7 --free dropout --checkpoint-every 20 \
  --checkpoint-dir "$T/ck2" --out "$T/ck2.json"
cp "$T/ck2/step-00000020.checkpoint.json" "$C/checkpoint/digits-20-of-40.json"
cp "$T/ck2/step-00000040.checkpoint.json" "$C/checkpoint/digits-40-end.json"
train --set dataset=spiral --set hidden=5,5 --set threads=2 --set chunks=4 --steps 12 --record-batches \
  --checkpoint-every 6 --checkpoint-dir "$T/ck3" --out "$T/ck3.json"
cp "$T/ck3/step-00000006.checkpoint.json" "$C/checkpoint/spiral-batches-6.json"
ls -l "$C"/*/
