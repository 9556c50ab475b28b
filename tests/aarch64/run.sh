#!/usr/bin/env bash
# `make test-aarch64`: the eighth stack. The CLI built for
# aarch64-unknown-linux-gnu (Debian's gcc-aarch64-linux-gnu as linker) and run
# under qemu-aarch64 (Debian's qemu-user) gives the host (x86-64) build's hash
# chains, bit for bit:
#   - pinned 500-step digits runs with dropout, at every level whose runs are
#     reproducible (none with every source pinned, run-to-run, exact), each
#     with ReLU, tanh in engine version 1, and 2 threads with 4 chunks: both
#     builds train the same settings and `reprolab diff` must say
#     "identical" (on a mismatch it names the first step that differs);
#   - the host build replays every aarch64 manifest (`reprolab replay`), and
#     the aarch64 build replays one host manifest;
#   - level none with free sources (init, shuffle, dropout drawn fresh by the
#     aarch64 run and recorded): the host build replays that run.
# Everything it writes goes under target/aarch64-parity/; the aarch64 build
# lives in target/aarch64-unknown-linux-gnu/ and is reused from run to run.
# Needs what scripts/setup.sh installs (the cross linker, its C library,
# qemu-user and the Rust target).
set -euo pipefail

cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
TRIPLE=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
WORK=target/aarch64-parity
STEPS=500
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}

missing=()
command -v "$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER" >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
[ -e "$SYSROOT/lib/crt1.o" ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE" || missing+=("the Rust target $TRIPLE")
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-aarch64: missing ${missing[*]}: run scripts/setup.sh" >&2
  exit 2
fi

log() { printf '[aarch64] %s\n' "$*"; }
start=$SECONDS

t=$SECONDS
cargo build --release --locked --target "$TRIPLE" --bin reprolab
log "aarch64 build: $((SECONDS - t)) s"
t=$SECONDS
cargo build --release --locked --bin reprolab
log "host build: $((SECONDS - t)) s"

ARM_BIN=target/$TRIPLE/release/reprolab
HOST=target/release/reprolab
HOST_ARCH=$(uname -m)
arm() { qemu-aarch64 -L "$SYSROOT" "$ARM_BIN" "$@"; }

rm -rf "$WORK"
mkdir -p "$WORK/aarch64" "$WORK/$HOST_ARCH"
failures=0
fail() {
  echo "test-aarch64: FAIL: $*" >&2
  failures=$((failures + 1))
}

# One manifest field (a JSON path of keys), printed as JSON.
field() {
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v if isinstance(v, str) else json.dumps(v))' "$@"
}

# The manifest was written by the build it should come from, ran every step,
# and was granted the level asked for.
check_manifest() { # FILE ARCH LEVEL
  local ua steps links granted
  ua=$(field "$1" user_agent)
  steps=$(field "$1" steps_completed)
  links=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["hash_chain"]))' "$1")
  granted=$(field "$1" level_granted)
  [[ $ua == *"; $2)"* ]] || fail "$1: written by \"$ua\", not by the $2 build"
  [ "$steps" = "$STEPS" ] && [ "$links" = "$STEPS" ] || fail "$1: $steps steps, $links chain links (expected $STEPS)"
  [ "$granted" = "$3" ] || fail "$1: level granted $granted, asked for $3 ($(field "$1" level_reason))"
}

CASES=(
  "relu|"
  "tanh-v1|--set activation=tanh --engine-version 1"
  "threads2-chunks4|--threads 2 --chunks 4"
)
LEVELS=(none run-to-run exact)
COMMON=(-q --backend cpu --steps "$STEPS" --seed 1 --set dataset=digits --set dropout=0.1)

t=$SECONDS
for level in "${LEVELS[@]}"; do
  for c in "${CASES[@]}"; do
    name=${c%%|*}
    read -r -a extra <<<"${c#*|}"
    run="$level-$name"
    a="$WORK/aarch64/$run.json"
    h="$WORK/$HOST_ARCH/$run.json"
    arm train "${COMMON[@]}" --level "$level" "${extra[@]}" --out "$a"
    "$HOST" train "${COMMON[@]}" --level "$level" "${extra[@]}" --out "$h"
    check_manifest "$a" aarch64 "$level"
    check_manifest "$h" "$HOST_ARCH" "$level"
    if out=$("$HOST" diff "$h" "$a" 2>&1) && [[ $out == identical* ]]; then
      verdict="same chain (head $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["hash_chain"][-1])' "$a"))"
    else
      verdict="DIFFERENT"
      fail "$run: the aarch64 and $HOST_ARCH chains differ:"$'\n'"$out"
    fi
    if "$HOST" replay -q "$a" >"$WORK/replay-$run.txt" 2>&1; then
      verdict+=", $HOST_ARCH replays the aarch64 manifest"
    else
      fail "$run: the $HOST_ARCH build does not replay the aarch64 manifest: $(cat "$WORK/replay-$run.txt")"
    fi
    log "$(printf '%-10s %-16s %s' "$level" "$name" "$verdict")"
  done
done
log "pinned runs: $((SECONDS - t)) s"

# The comparison can tell runs apart: the three settings give three chains.
for pair in "relu tanh-v1" "relu threads2-chunks4"; do
  read -r x y <<<"$pair"
  if "$HOST" diff "$WORK/aarch64/exact-$x.json" "$WORK/aarch64/exact-$y.json" >/dev/null 2>&1; then
    fail "exact-$x and exact-$y compare as identical: the comparison cannot see a difference"
  fi
done

# Level none with free sources: the aarch64 run draws its own seeds, which the
# manifest records, and the host build retraces it from them.
t=$SECONDS
free="$WORK/aarch64/none-free.json"
arm train "${COMMON[@]}" --free init --free shuffle --free dropout --out "$free"
check_manifest "$free" aarch64 none
if "$HOST" replay -q "$free" >"$WORK/replay-none-free.txt" 2>&1; then
  log "none (free)  init, shuffle, dropout drawn on aarch64 (seeds $(field "$free" seeds)): $HOST_ARCH replays it"
else
  fail "none-free: the $HOST_ARCH build does not replay the aarch64 manifest: $(cat "$WORK/replay-none-free.txt")"
fi

# And the other way: the aarch64 build replays a host manifest.
if arm replay -q "$WORK/$HOST_ARCH/exact-threads2-chunks4.json" >"$WORK/replay-arm.txt" 2>&1; then
  log "aarch64 replays the $HOST_ARCH manifest exact-threads2-chunks4"
else
  fail "the aarch64 build does not replay exact-threads2-chunks4 of $HOST_ARCH: $(cat "$WORK/replay-arm.txt")"
fi
log "free run and replays: $((SECONDS - t)) s"

if [ "$failures" -gt 0 ]; then
  echo "test-aarch64: $failures failure(s); manifests in $WORK ($((SECONDS - start)) s)" >&2
  exit 1
fi
log "all passed: aarch64 under qemu gives the $HOST_ARCH chains at every level ($((SECONDS - start)) s)"
