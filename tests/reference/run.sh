#!/usr/bin/env bash
# `make test-reference`: the independent reference implementation
# (tests/reference/reprolab_ref.py, Python + numpy, written from src/spec.rs)
# retraces pinned runs of the CLI bit for bit, and its elementary functions are
# compared with the `libm` crate that Cargo.lock holds. Everything it writes
# goes under target/reference/. Needs numpy (scripts/setup.sh installs it).
set -euo pipefail

cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
WORK=target/reference
export PYTHONDONTWRITEBYTECODE=1
SWEEP=$WORK/libm-sweep

PY=${PYTHON:-python3}
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    PY=/usr/bin/python3
  else
    echo "test-reference: $PY has no numpy: run scripts/setup.sh" >&2
    exit 2
  fi
fi

cargo build --release --locked --bin reprolab

# A throwaway crate that prints tables of the locked libm's functions.
LIBM=$(awk '/^name = "libm"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
mkdir -p "$SWEEP/src" "$SWEEP/out"
cat > "$SWEEP/Cargo.toml" <<TOML
[package]
name = "libm-sweep"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
libm = "=$LIBM"

[workspace]
TOML
cp tests/reference/libm_sweep.rs "$SWEEP/src/main.rs"
(cd "$SWEEP" && { CARGO_TARGET_DIR=target cargo build --release --quiet --offline 2>/dev/null ||
  CARGO_TARGET_DIR=target cargo build --release --quiet; })
"$SWEEP/target/release/libm-sweep" "$SWEEP/out"

"$PY" tests/reference/check.py --cli target/release/reprolab --tables "$SWEEP/out" \
  --work "$WORK/runs" --libm-locked "$LIBM"
