#!/usr/bin/env python3
"""The reference implementation's test suite (run by tests/reference/run.sh,
`make test-reference`).

1. The elementary functions: the ports in reprolab_ref.py against tables
   written by the `libm` crate of Cargo.lock (and a corrupted table is caught).
2. The readers and integer primitives (reprolab_ref.py selftest).
3. Pinned runs with dropout trained by the CLI, retraced bit for bit: engine
   versions 1 and 2 x ReLU and tanh x chunks 1 and 3, the defaults, and a run
   that stops on a non-finite loss.
4. The retrace can fail: one flipped bit in a recorded loss, a chain link, a
   checkpoint's weights, a safetensors file's weights or a recorded batch is
   reported with its step (and tensor and index).

Prints one line per check and `N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import reprolab_ref as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "data", "digits-v1.bin")

# name, settings, extra CLI flags. Every run has dropout; together they cover
# engine versions 1 and 2 x relu and tanh x chunks 1 and 3, and the defaults.
RUNS = [
    ("v1-relu-c1", {"dataset": "digits@1", "dropout": "0.1"}, ["--seed", "3", "--steps", "60", "--engine-version", "1"]),
    (
        "v1-relu-c3",
        {"dataset": "digits@2", "dropout": "0.5", "val_fraction": "0.3", "eval_every": "20"},
        ["--seed", "4", "--steps", "60", "--engine-version", "1", "--chunks", "3"],
    ),
    (
        "v1-tanh-c1",
        {"activation": "tanh", "dropout": "0.2", "learning_rate": "0.1", "momentum": "0.5"},
        ["--seed", "5", "--steps", "60", "--engine-version", "1"],
    ),
    (
        "v1-tanh-c3",
        {
            "activation": "tanh",
            "hidden": "32,16",
            "dropout": "0.25",
            "batch_size": "20",
            "weight_decay": "0.001",
            "eval_every": "30",
        },
        ["--seed", "9", "--steps", "80", "--engine-version", "1", "--chunks", "3", "--checkpoint-every", "40"],
    ),
    ("v2-relu-c1", {"dataset": "digits@1", "dropout": "0.3"}, ["--seed", "6", "--steps", "60", "--engine-version", "2"]),
    (
        "v2-relu-c3",
        {"dropout": "0.3", "eval_every": "25"},
        ["--seed", "7", "--steps", "60", "--engine-version", "2", "--chunks", "3", "--threads", "2"],
    ),
    ("v2-tanh-c1", {"activation": "tanh", "dropout": "0.1"}, ["--seed", "11", "--steps", "60", "--engine-version", "2"]),
    (
        "v2-tanh-c3",
        {"activation": "tanh", "dropout": "0.15", "batch_size": "25", "hidden": "96"},
        ["--seed", "12", "--steps", "60", "--engine-version", "2", "--chunks", "3"],
    ),
    ("defaults", {}, ["--seed", "1", "--steps", "100"]),
    # Diverges: the loss turns NaN at a step the manifest records as `stopped`.
    ("stops", {"learning_rate": "1000000000", "momentum": "0.99"}, ["--seed", "2", "--steps", "40"]),
]


class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name, detail=""):
        self.passed += 1
        print(f"ok - {name}{': ' + detail if detail else ''}", flush=True)

    def fail(self, name, detail):
        self.failed += 1
        print(f"FAILED - {name}: {detail}", flush=True)


def checkpoint_files(folder):
    """The checkpoints of a checkpoint folder, by step (not the history
    files that later checkpoints continue: docs/MANIFEST.md)."""
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".checkpoint.json")]


def retrace(manifest, weights=(), record=None):
    """(status, message): 'identical' or 'mismatch' and the reference's line."""
    lines = []
    try:
        ref.retrace(manifest, DATA, list(weights), out=lines.append, record_batches=record)
        return "identical", lines[-1]
    except ref.Mismatch as e:
        return "mismatch", str(e)


def train(cli, work, name, settings, flags):
    out = os.path.join(work, f"{name}.json")
    cmd = [cli, "train", "--backend", "cpu", "-q", "--out", out] + flags
    if "--checkpoint-every" in flags:
        ck = os.path.join(work, f"{name}-checkpoints")
        shutil.rmtree(ck, ignore_errors=True)
        cmd += ["--checkpoint-dir", ck]
    for k, v in settings.items():
        cmd += ["--set", f"{k}={v}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    # A run that stops on a non-finite loss exits 1 and still writes its manifest.
    if r.returncode not in (0, 1) or not os.path.exists(out):
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return out


def shortest_f32(x) -> str:
    return np.format_float_scientific(np.float32(x), unique=True)


def load(path):
    with open(path) as f:
        return json.load(f)


def save(doc, path):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help="target/release/reprolab")
    ap.add_argument("--tables", required=True, help="folder of the libm tables (libm_sweep.rs)")
    ap.add_argument("--work", required=True, help="a folder under target/ for the runs")
    ap.add_argument("--libm-locked", required=True, help="the libm version of Cargo.lock")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    s = Suite()
    t0 = time.time()

    # 1. Elementary functions.
    if a.libm_locked == ref.LIBM_VERSION:
        s.ok("libm version", f"Cargo.lock holds {a.libm_locked}, the version the reference ports")
    else:
        s.fail(
            "libm version",
            f"Cargo.lock holds libm {a.libm_locked} but the reference ports {ref.LIBM_VERSION}: every run's bits may "
            "change; port the new expf/logf/tanhf, update src/spec.rs and bump the kernel version",
        )
    spec = open(os.path.join(ROOT, "src", "spec.rs"), encoding="utf-8").read()
    marker = 'pub const LIBM_VERSION: &str = "'
    in_spec = spec[spec.index(marker) + len(marker) :].split('"')[0] if marker in spec else None
    if in_spec == a.libm_locked:
        s.ok("src/spec.rs names the locked libm", in_spec)
    else:
        s.fail("src/spec.rs LIBM_VERSION", f"{in_spec!r}, but Cargo.lock holds {a.libm_locked}")
    if ref.elementary(a.tables) == 0:
        s.ok("expf, logf, tanhf, expm1f equal the libm crate's on every tabled input")
    else:
        s.fail("elementary functions", "see the lines above")
    bad = os.path.join(a.work, "tables-corrupted")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(a.tables, bad)
    table = np.fromfile(os.path.join(bad, "tanhf.bin"), dtype="<u4").reshape(-1, 2)
    i = len(table) // 2 + 7
    table[i, 1] ^= 1
    table.tofile(os.path.join(bad, "tanhf.bin"))
    if ref.elementary(bad) == 1:
        s.ok("a one-bit error in a libm table is caught")
    else:
        s.fail("corrupted libm table", "not caught")

    # 2. Readers and primitives.
    if ref.selftest(os.path.join(a.work, "selftest")) == 0:
        s.ok("selftest (safetensors and batches readers on hand-made files, ChaCha20, murmur3, conversions)")
    else:
        s.fail("selftest", "see the lines above")

    # 3. Pinned runs retraced.
    manifests = {}
    for name, settings, flags in RUNS:
        try:
            path = train(a.cli, a.work, name, settings, flags)
        except RuntimeError as e:
            s.fail(f"train {name}", str(e))
            continue
        manifests[name] = path
        m = load(path)
        weights = []
        ck = os.path.join(a.work, f"{name}-checkpoints")
        if os.path.isdir(ck):
            weights = checkpoint_files(ck)
        status, msg = retrace(path, weights)
        what = (
            f"engine {m['engine_version']}, {m['config']['activation']['value']}, hidden "
            f"{m['config']['hidden']['value']}, dropout {m['config']['dropout']['value']}, chunks "
            f"{m['config']['chunks']['value']}, {m['data']['name']}@{m['data']['version']}"
        )
        if status == "identical":
            s.ok(f"retrace {name} ({what})", msg)
        else:
            s.fail(f"retrace {name} ({what})", msg)
    if "stops" in manifests:
        m = load(manifests["stops"])
        if m.get("stopped"):
            s.ok("the diverging run stopped", f"at step {m['stopped']['step']}")
        else:
            s.fail("the diverging run", "did not stop: pick a larger learning rate")

    # 4. The retrace can fail, and says where.
    base = manifests.get("v2-relu-c3")
    if base:
        m = load(base)
        k = 17
        flipped = ref.f32_from_bits(ref.f32_bits(ref.decimal_to_f32(str(m["train_loss"][k]))) ^ 1)
        m["train_loss"][k] = float(shortest_f32(flipped))
        p = os.path.join(a.work, "perturbed-loss.json")
        save(m, p)
        if ref.f32_bits(ref.decimal_to_f32(str(load(p)["train_loss"][k]))) != ref.f32_bits(flipped):
            s.fail("perturb a loss", "the perturbed file does not hold the flipped bits")
        status, msg = retrace(p)
        if status == "mismatch" and msg.startswith(f"step {k + 1}: train_loss"):
            s.ok("a loss with one bit flipped is reported", msg)
        else:
            s.fail("a loss with one bit flipped", f"{status}: {msg}")

        m = load(base)
        k = 33
        link = m["hash_chain"][k]
        m["hash_chain"][k] = link[:-1] + format(int(link[-1], 16) ^ 1, "x")
        p = os.path.join(a.work, "perturbed-chain.json")
        save(m, p)
        status, msg = retrace(p)
        if status == "mismatch" and msg.startswith(f"step {k + 1}: hash_chain[{k}]") and "lanes lo differ" in msg:
            s.ok("a chain link with one bit flipped is reported", msg)
        else:
            s.fail("a chain link with one bit flipped", f"{status}: {msg}")

        # Batches: the manifest's `batches` field, when present, is checked step by step.
        rows = []
        status, _ = retrace(base, record=rows)
        m = load(base)
        m["batches"] = rows
        p = os.path.join(a.work, "with-batches.json")
        save(m, p)
        status, msg = retrace(p)
        if status == "identical" and "batches of" in msg:
            s.ok("a manifest with batches is read and matches", msg)
        else:
            s.fail("a manifest with batches", f"{status}: {msg}")
        k = 21
        m["batches"][k][5] = (m["batches"][k][5] + 1) % 1797
        save(m, p)
        status, msg = retrace(p)
        if status == "mismatch" and msg.startswith(f"step {k + 1}: batches[{k}] position 5"):
            s.ok("a recorded batch with one index changed is reported", msg)
        else:
            s.fail("a recorded batch with one index changed", f"{status}: {msg}")

    ckrun = manifests.get("v1-tanh-c3")
    ck = os.path.join(a.work, "v1-tanh-c3-checkpoints")
    if ckrun and os.path.isdir(ck):
        first = checkpoint_files(ck)[0]
        doc = load(first)
        step = doc["step"]
        net = ref.Net([64, 32, 16, 10], "tanh")
        idx = net.layers[1][2] + 5 * 16 + 3  # layer1.weight[5, 3]
        doc["params_bits"][idx] ^= 1 << 4
        p = os.path.join(a.work, "perturbed.checkpoint.json")
        save(doc, p)
        status, msg = retrace(ckrun, [p])
        if status == "mismatch" and f"step {step}:" in msg and "layer1.weight[5, 3]" in msg:
            s.ok("a checkpoint weight with one bit flipped is reported by tensor and index", msg)
        else:
            s.fail("a checkpoint weight with one bit flipped", f"{status}: {msg}")

        # A safetensors file of the same weights (written here: the engine's
        # exporter is the lead's) is read and compared at its step.
        params = ref.from_bits(np.array(load(first)["params_bits"], dtype=np.uint64).astype(np.uint32))
        tensors = {}
        for i, (fi, fo, w, b) in enumerate(net.layers):
            tensors[f"layer{i}.weight"] = params[w:b].reshape(fi, fo)
            tensors[f"layer{i}.bias"] = params[b : b + fo]
        st = os.path.join(a.work, f"step-{step}.safetensors")
        ref.write_safetensors(st, tensors, {"step": str(step)})
        status, msg = retrace(ckrun, [st])
        if status == "identical":
            s.ok("a safetensors file of the weights at a step matches the retrace", msg)
        else:
            s.fail("a safetensors file of the weights", f"{status}: {msg}")
        tensors["layer2.bias"] = tensors["layer2.bias"].copy()
        tensors["layer2.bias"][7] = ref.f32_from_bits(ref.f32_bits(tensors["layer2.bias"][7]) ^ 0x80000000)
        ref.write_safetensors(st, tensors, {"step": str(step)})
        status, msg = retrace(ckrun, [st])
        if status == "mismatch" and "layer2.bias[7]" in msg:
            s.ok("a safetensors weight with its sign flipped is reported by tensor and index", msg)
        else:
            s.fail("a safetensors weight with its sign flipped", f"{status}: {msg}")

    # 4. The engine's own writers, read by the reference: `train
    # --record-batches` and `export --format safetensors` (final and initial
    # weights of a manifest, the weights of a checkpoint).
    try:
        path = train(a.cli, a.work, "writers", {"dropout": "0.2", "hidden": "48"},
                     ["--seed", "11", "--steps", "40", "--engine-version", "2", "--record-batches",
                      "--checkpoint-every", "20"])
        exports = []
        ck = os.path.join(a.work, "writers-checkpoints")
        for src, which in [(path, "final"), (path, "initial"), (checkpoint_files(ck)[0], "checkpoint")]:
            out = os.path.join(a.work, f"writers-{which}.safetensors")
            r = subprocess.run([a.cli, "export", src, "--format", "safetensors", "--weights", which, "--out", out, "-q"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"export {which} exited {r.returncode}: {r.stderr.strip()}")
            if which != "initial":
                exports.append(out)
        status, msg = retrace(path, exports)
        if status == "identical" and "batches of 40 steps" in msg and "[20, 40]" in msg:
            s.ok("the CLI's recorded batches and exported safetensors (checkpoint, final) match the retrace", msg)
        else:
            s.fail("the CLI's recorded batches and exported safetensors", f"{status}: {msg}")
    except RuntimeError as e:
        s.fail("the CLI's writers", str(e))

    print(f"reference checks took {time.time() - t0:.1f} s")
    print(f"{s.passed} passed, {s.failed} failed")
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
