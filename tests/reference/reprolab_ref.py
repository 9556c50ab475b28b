#!/usr/bin/env python3
"""An independent reference implementation of reprolab's CPU engine.

Written from the spec (`src/spec.rs`), in Python with numpy, to prove the spec
is complete: it reads a run manifest written by `reprolab train ... --out
m.json` and retraces the run bit for bit, every training loss (as f32 bits),
every hash-chain link, the initial and final weight hashes and every
validation point, and reports the first step, tensor and index that differ.

Arithmetic rules this file keeps (spec: "Arithmetic"):
- every float value is an IEEE binary32 (numpy float32); every `+ - * /` is
  one numpy elementwise operation on float32 operands, so it is rounded once
  to nearest even, never fused, never reordered;
- every sum is one running float32 accumulator per output, its terms added
  one at a time in the spec's order (a Python loop over the summed index,
  vectorised across the outputs). np.dot, np.matmul, np.sum and friends are
  never used on float32: they reorder and may fuse;
- exp, log and tanh are ports of the `libm` crate's expf, logf, tanhf (and
  expm1f) at the version in Cargo.lock ([LIBM_VERSION]);
- ChaCha20, SHA-256 key derivation, Lemire's bounded integers, Fisher-Yates
  and the murmur3 weight hash use integers only (Python ints, or numpy uint32
  arrays, whose `+ * ^ << >>` wrap modulo 2^32 exactly).

Sub-commands (run with `-h` for options):
  retrace MANIFEST [--weights FILE]...   retrace a run; exit 0 when identical, 1 at the first difference
  selftest                               the unit tests of this file (readers, ChaCha, murmur, conversions)
  elementary FOLDER                      compare expf/logf/tanhf/expm1f with tables written by the libm crate
  safetensors FILE                       print the tensors and metadata of a safetensors file

Exit status: 0 identical / passed, 1 a difference, 2 unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np

# The version of the `libm` crate whose expf/logf/tanhf this file ports. The
# runner checks it against Cargo.lock, so an update of the crate is noticed.
LIBM_VERSION = "0.2.16"

F32 = np.float32
U32 = np.uint32
MASK32 = 0xFFFFFFFF


class Unusable(Exception):
    """The input cannot be retraced (exit status 2)."""


# ---------------------------------------------------------------------------
# Float helpers
# ---------------------------------------------------------------------------


def f32(v) -> np.float32:
    return np.float32(v)


def bits_of(x) -> np.ndarray:
    """The binary32 bit patterns of a float32 array (uint32)."""
    return np.ascontiguousarray(np.asarray(x, dtype=F32)).view(U32)


def from_bits(b) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(b, dtype=U32)).view(F32)


def f32_from_bits(b: int) -> np.float32:
    return from_bits(np.array([b], dtype=U32))[0]


def f32_bits(x) -> int:
    return int(np.array([x], dtype=F32).view(U32)[0])


def decimal_to_f32(text) -> np.float32:
    """The float32 nearest to a decimal number (ties to even), read exactly:
    what Rust's `str::parse::<f32>` gives. Not via a float64 first (double
    rounding)."""
    q = Fraction(Decimal(str(text)))
    if q == 0:
        return f32(-0.0) if str(text).strip().startswith("-") else f32(0.0)
    neg = q < 0
    q = abs(q)
    # Exponent e with 2^e <= q < 2^(e+1).
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1
    e = max(e, -126)  # subnormals share the exponent of the smallest normal
    ulp = Fraction(2) ** (e - 23)
    m = q / ulp
    n = m.numerator // m.denominator
    rem = m - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1):
        n += 1
    value = n * ulp
    if value >= Fraction(2) ** 128:
        out = float("inf")
    else:
        out = float(value)  # exact: n * 2^(e-23) has at most 24 significant bits
    r = f32(out)
    return -r if neg else r


# ---------------------------------------------------------------------------
# libm 0.2.16 ports (FreeBSD msun via musl), elementwise on float32 arrays.
# Every branch is computed on the subset of elements that takes it.
# ---------------------------------------------------------------------------

_X1P127 = f32_from_bits(0x7F000000)


def _scalbnf(y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """libm's generic scalbn for f32: y * 2^n with its prescaling."""
    y = y.copy()
    n = n.astype(np.int64).copy()
    big = n > 127
    if big.any():
        y[big] = y[big] * f32_from_bits(0x7F000000)  # 2^127
        n[big] -= 127
        big2 = big & (n > 127)
        y[big2] = y[big2] * f32_from_bits(0x7F000000)
        n[big2] -= 127
        n[big2 & (n > 127)] = 127
    small = n < -126
    if small.any():
        mul = f32_from_bits(0x00800000) * f32_from_bits((127 + 24) << 23)  # 2^-126 * 2^24
        y[small] = y[small] * mul
        n[small] += 126 - 24
        small2 = small & (n < -126)
        y[small2] = y[small2] * mul
        n[small2] += 126 - 24
        n[small2 & (n < -126)] = -126
    scale = from_bits(((127 + n) << 23).astype(U32))
    return y * scale


def expf(x) -> np.ndarray:
    x = np.atleast_1d(np.asarray(x, dtype=F32)).copy()
    out = np.empty_like(x)
    hx = bits_of(x)
    sign = (hx >> U32(31)).astype(np.int64)
    ax = hx & U32(0x7FFFFFFF)
    done = np.zeros(x.shape, dtype=bool)

    nan = ax > 0x7F800000
    out[nan] = x[nan]
    done |= nan
    over = ~done & (ax >= 0x42B17218) & (sign == 0)
    out[over] = x[over] * _X1P127
    done |= over
    under = ~done & (sign == 1) & (ax >= 0x42CFF1B5)
    out[under] = f32(0.0)
    done |= under
    tiny = ~done & (ax <= 0x39000000)
    out[tiny] = f32(1.0) + x[tiny]
    done |= tiny

    todo = ~done
    xs, axs, sg = x[todo], ax[todo], sign[todo]
    k = np.zeros(xs.shape, dtype=np.int64)
    hi = xs.copy()
    lo = np.zeros_like(xs)
    xr = xs.copy()
    red = axs > 0x3EB17218
    if red.any():
        xv, sv = xs[red], sg[red]
        half = np.where(sv == 1, f32(-0.5), f32(0.5)).astype(F32)
        far = axs[red] > 0x3F851592
        kk = np.where(sv == 1, -1, 1).astype(np.int64)
        if far.any():
            with np.errstate(invalid="ignore", over="ignore"):
                t = f32(1.4426950216e00) * xv[far] + half[far]
            kk[far] = np.trunc(t.astype(np.float64)).astype(np.int64)
        kf = kk.astype(F32)
        h = xv - kf * f32(6.9314575195e-01)
        lw = kf * f32(1.4286067653e-06)
        k[red], hi[red], lo[red], xr[red] = kk, h, lw, h - lw
    xx = xr * xr
    c = xr - xx * (f32(1.6666625440e-1) + xx * f32(-2.7667332906e-3))
    y = f32(1.0) + (((xr * c) / (f32(2.0) - c)) - lo + hi)
    nz = k != 0
    if nz.any():
        y[nz] = _scalbnf(y[nz], k[nz])
    out[todo] = y
    return out


def logf(x) -> np.ndarray:
    x = np.atleast_1d(np.asarray(x, dtype=F32)).copy()
    out = np.empty_like(x)
    ix = bits_of(x).astype(np.int64)
    done = np.zeros(x.shape, dtype=bool)
    k = np.zeros(x.shape, dtype=np.int64)

    low = (ix < 0x00800000) | ((ix >> 31) != 0)
    zero = low & (((ix << 1) & MASK32) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[zero] = f32(-1.0) / (x[zero] * x[zero])
        neg = low & ~zero & ((ix >> 31) != 0)
        out[neg] = (x[neg] - x[neg]) / f32(0.0)
    done |= zero | neg
    sub = low & ~done
    if sub.any():
        k[sub] -= 25
        x[sub] = x[sub] * f32_from_bits(0x4C000000)  # 2^25
        ix[sub] = bits_of(x[sub]).astype(np.int64)
    inf = ~low & (ix >= 0x7F800000)
    out[inf] = x[inf]
    one = ~low & (ix == 0x3F800000)
    out[one] = f32(0.0)
    done |= inf | one

    todo = ~done
    i = (ix[todo] + (0x3F800000 - 0x3F3504F3)) & MASK32
    kk = k[todo] + ((i >> 23) - 0x7F)
    i = (i & 0x007FFFFF) + 0x3F3504F3
    xr = from_bits(i.astype(U32))
    f = xr - f32(1.0)
    s = f / (f32(2.0) + f)
    z = s * s
    w = z * z
    t1 = w * (f32(0.40000972152) + w * f32(0.24279078841))
    t2 = z * (f32(0.66666662693) + w * f32(0.28498786688))
    r = t2 + t1
    hfsq = f32(0.5) * f * f
    dk = kk.astype(F32)
    out[todo] = s * (hfsq + r) + dk * f32(9.0580006145e-06) - hfsq + f + dk * f32(6.9313812256e-01)
    return out


def expm1f(x) -> np.ndarray:
    x = np.atleast_1d(np.asarray(x, dtype=F32)).copy()
    out = np.empty_like(x)
    hx = bits_of(x)
    sign = (hx >> U32(31)) != 0
    ax = hx & U32(0x7FFFFFFF)
    done = np.zeros(x.shape, dtype=bool)

    huge = ax >= 0x4195B844
    nan = huge & (ax > 0x7F800000)
    out[nan] = x[nan]
    minus1 = huge & ~nan & sign
    out[minus1] = f32(-1.0)
    with np.errstate(over="ignore"):
        big = huge & ~nan & ~sign & (ax > 0x42B17217)
        out[big] = x[big] * _X1P127
    done |= nan | minus1 | big
    small = ~done & (ax < 0x33000000) & ~(ax > 0x3EB17218)
    out[small] = x[small]
    done |= small

    todo = ~done
    xs, axs, sg = x[todo], ax[todo], sign[todo]
    k = np.zeros(xs.shape, dtype=np.int64)
    c = np.zeros_like(xs)
    xr = xs.copy()
    red = axs > 0x3EB17218
    if red.any():
        xv, sv, av = xs[red], sg[red], axs[red]
        hi = np.empty_like(xv)
        lo = np.empty_like(xv)
        kk = np.empty(xv.shape, dtype=np.int64)
        near = av < 0x3F851592
        pos = near & ~sv
        hi[pos] = xv[pos] - f32(6.9313812256e-01)
        lo[pos] = f32(9.0580006145e-06)
        kk[pos] = 1
        negn = near & sv
        hi[negn] = xv[negn] + f32(6.9313812256e-01)
        lo[negn] = f32(-9.0580006145e-06)
        kk[negn] = -1
        far = ~near
        if far.any():
            half = np.where(sv[far], f32(-0.5), f32(0.5)).astype(F32)
            t = f32(1.4426950216e00) * xv[far] + half
            kf_int = np.trunc(t.astype(np.float64)).astype(np.int64)
            tf = kf_int.astype(F32)
            hi[far] = xv[far] - tf * f32(6.9313812256e-01)
            lo[far] = tf * f32(9.0580006145e-06)
            kk[far] = kf_int
        xn = hi - lo
        k[red] = kk
        xr[red] = xn
        c[red] = (hi - xn) - lo
    hfx = f32(0.5) * xr
    hxs = xr * hfx
    r1 = f32(1.0) + hxs * (f32(-3.3333212137e-2) + hxs * f32(1.5807170421e-3))
    t = f32(3.0) - r1 * hfx
    e = hxs * ((r1 - t) / (f32(6.0) - xr * t))
    res = np.empty_like(xr)

    k0 = k == 0
    res[k0] = xr[k0] - (xr[k0] * e[k0] - hxs[k0])
    rest = ~k0
    e2 = np.zeros_like(xr)
    e2[rest] = xr[rest] * (e[rest] - c[rest]) - c[rest]
    e2[rest] = e2[rest] - hxs[rest]
    km1 = k == -1
    res[km1] = f32(0.5) * (xr[km1] - e2[km1]) - f32(0.5)
    k1 = k == 1
    k1a = k1 & (xr < f32(-0.25))
    res[k1a] = f32(-2.0) * (e2[k1a] - (xr[k1a] + f32(0.5)))
    k1b = k1 & ~(xr < f32(-0.25))
    res[k1b] = f32(1.0) + f32(2.0) * (xr[k1b] - e2[k1b])
    other = rest & ~km1 & ~k1
    if other.any():
        ko = k[other]
        xo, eo = xr[other], e2[other]
        twopk = from_bits((((0x7F + ko) << 23) & MASK32).astype(U32))
        ro = np.empty_like(xo)
        wide = (ko < 0) | (ko > 56)
        y = (xo[wide] - eo[wide]) + f32(1.0)
        with np.errstate(all="ignore"):
            y = np.where(ko[wide] == 128, (y * f32(2.0)) * _X1P127, y * twopk[wide]).astype(F32)
        ro[wide] = y - f32(1.0)
        mid = ~wide
        uf = from_bits((((0x7F - ko[mid]) << 23) & MASK32).astype(U32))
        xm, em, tm = xo[mid], eo[mid], twopk[mid]
        lt = ko[mid] < 23
        rm = np.empty_like(xm)
        rm[lt] = ((xm[lt] - em[lt]) + (f32(1.0) - uf[lt])) * tm[lt]
        rm[~lt] = ((xm[~lt] - (em[~lt] + uf[~lt])) + f32(1.0)) * tm[~lt]
        ro[mid] = rm
        res[other] = ro
    out[todo] = res
    return out


def tanhf(x) -> np.ndarray:
    x = np.atleast_1d(np.asarray(x, dtype=F32))
    ix = bits_of(x)
    sign = (ix >> U32(31)) != 0
    w = ix & U32(0x7FFFFFFF)
    a = from_bits(w)
    tt = np.empty_like(a)
    big = w > 0x3F0C9F54
    huge = big & (w > 0x41200000)
    with np.errstate(invalid="ignore"):
        tt[huge] = f32(1.0) + f32(0.0) / a[huge]
    mid = big & ~huge
    if mid.any():
        t = expm1f(f32(2.0) * a[mid])
        tt[mid] = f32(1.0) - f32(2.0) / (t + f32(2.0))
    med = ~big & (w > 0x3E82C578)
    if med.any():
        t = expm1f(f32(2.0) * a[med])
        tt[med] = t / (t + f32(2.0))
    low = ~big & ~med & (w >= 0x00800000)
    if low.any():
        t = expm1f(f32(-2.0) * a[low])
        tt[low] = (-t) / (t + f32(2.0))
    sub = ~big & ~med & ~low
    tt[sub] = a[sub]
    return np.where(sign, -tt, tt).astype(F32)


# ---------------------------------------------------------------------------
# Random streams: SHA-256 keys, ChaCha20 blocks, Lemire, Fisher-Yates
# ---------------------------------------------------------------------------

STREAM_KEY_PREFIX = b"reprolab/stream/v1/"
CHACHA_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
SPLIT_STREAM_ID = 0
EPOCH_STREAM_BASE = 1
DROPOUT_LAYER_SHIFT = 40


def stream_key(name: str, seed: int) -> bytes:
    return hashlib.sha256(STREAM_KEY_PREFIX + name.encode() + b":" + seed.to_bytes(8, "little")).digest()


def _rotl(v: np.ndarray, n: int) -> np.ndarray:
    return (v << U32(n)) | (v >> U32(32 - n))


def chacha20_blocks(key: bytes, stream_id: int, first_block: int, count: int) -> np.ndarray:
    """The 16 output words of blocks first_block .. first_block+count-1 of
    stream `stream_id` ([count, 16] uint32): 20 rounds, words 0-3 the
    constants, 4-11 the key (little-endian), 12-13 the 64-bit block counter,
    14-15 the 64-bit stream id."""
    blocks = np.arange(first_block, first_block + count, dtype=np.uint64)
    s = np.empty((16, count), dtype=U32)
    for i, cst in enumerate(CHACHA_CONSTANTS):
        s[i] = cst
    for i in range(8):
        s[4 + i] = int.from_bytes(key[4 * i : 4 * i + 4], "little")
    s[12] = (blocks & np.uint64(MASK32)).astype(U32)
    s[13] = (blocks >> np.uint64(32)).astype(U32)
    s[14] = stream_id & MASK32
    s[15] = (stream_id >> 32) & MASK32
    init = s.copy()
    x = [s[i].copy() for i in range(16)]

    def qr(a, b, c, d):
        x[a] = x[a] + x[b]
        x[d] = _rotl(x[d] ^ x[a], 16)
        x[c] = x[c] + x[d]
        x[b] = _rotl(x[b] ^ x[c], 12)
        x[a] = x[a] + x[b]
        x[d] = _rotl(x[d] ^ x[a], 8)
        x[c] = x[c] + x[d]
        x[b] = _rotl(x[b] ^ x[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(1, 5, 9, 13)
        qr(2, 6, 10, 14)
        qr(3, 7, 11, 15)
        qr(0, 5, 10, 15)
        qr(1, 6, 11, 12)
        qr(2, 7, 8, 13)
        qr(3, 4, 9, 14)
    out = np.stack([x[i] + init[i] for i in range(16)], axis=1)
    return out


class Stream:
    """A named stream: words addressed by (stream id, word position)."""

    def __init__(self, name: str, seed: int):
        self.name = name
        self.key = stream_key(name, seed)

    def words(self, stream_id: int, start: int, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=U32)
        b0, b1 = start // 16, (start + count - 1) // 16
        flat = chacha20_blocks(self.key, stream_id, b0, b1 - b0 + 1).reshape(-1)
        off = start - 16 * b0
        return flat[off : off + count]

    def reader(self, stream_id: int, start: int = 0) -> "Reader":
        return Reader(self, stream_id, start)


class Reader:
    """Consecutive words of one stream id, from a start position."""

    CHUNK = 64  # blocks fetched at a time

    def __init__(self, stream: Stream, stream_id: int, start: int):
        self.stream, self.id, self.pos = stream, stream_id, start
        self.buf: list[int] = []
        self.i = 0

    def next_u32(self) -> int:
        if self.i == len(self.buf):
            self.buf = [int(w) for w in self.stream.words(self.id, self.pos, 16 * self.CHUNK)]
            self.pos += 16 * self.CHUNK
            self.i = 0
        w = self.buf[self.i]
        self.i += 1
        return w

    def below(self, n: int) -> int:
        """Uniform in 0..n-1: Lemire's multiply, rejecting when the low word
        is below (2^32 - n) mod n (tested only when the low word < n)."""
        m = self.next_u32() * n
        low = m & MASK32
        if low < n:
            threshold = ((1 << 32) - n) % n
            while low < threshold:
                m = self.next_u32() * n
                low = m & MASK32
        return m >> 32


def permutation(stream: Stream, stream_id: int, n: int) -> list[int]:
    """Fisher-Yates from the last index down: for i = n-1 .. 1, j =
    below(i + 1), swap p[i] and p[j]; words consecutive from position 0."""
    p = list(range(n))
    r = stream.reader(stream_id, 0)
    for i in range(n - 1, 0, -1):
        j = r.below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p


# ---------------------------------------------------------------------------
# The weight hash and the chain (murmur3_32, two lanes)
# ---------------------------------------------------------------------------

HASH_CHUNK_WORDS = 1024
HASH_LANE_SEEDS = (0x52657072, 0x6F6C6162)
CHAIN_GENESIS = 0x72657072_6F6C6162


def _premix(words) -> list[int]:
    k = np.asarray(words, dtype=U32) * U32(0xCC9E2D51)
    k = _rotl(k, 15) * U32(0x1B873593)
    return [int(v) for v in k]


def _murmur(seed: int, premixed: list[int]) -> int:
    h = seed
    for k in premixed:
        h ^= k
        h = ((((h << 13) | (h >> 19)) & MASK32) * 5 + 0xE6546B64) & MASK32
    h ^= (4 * len(premixed)) & MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    h ^= h >> 16
    return h


def lanes(seed_xor: int, words) -> tuple[int, int]:
    """(lo, hi): murmur3_32 of all `words` with seed LANE_SEED[lane] ^ seed_xor."""
    pm = _premix(words)
    return tuple(_murmur((s ^ seed_xor) & MASK32, pm) for s in HASH_LANE_SEEDS)  # type: ignore[return-value]


def weights_hash(params: np.ndarray) -> tuple[int, int]:
    words = bits_of(params)
    leaves = []
    for c, at in enumerate(range(0, len(words), HASH_CHUNK_WORDS)):
        leaves.extend(lanes(c, words[at : at + HASH_CHUNK_WORDS]))
    return lanes(len(words), leaves)  # every lane over lo0, hi0, lo1, hi1, ...


def chain_link(prev: tuple[int, int], cur: tuple[int, int]) -> tuple[int, int]:
    return lanes(0, [prev[0], prev[1], cur[0], cur[1]])


def chain_genesis(initial: tuple[int, int]) -> tuple[int, int]:
    return chain_link((CHAIN_GENESIS & MASK32, CHAIN_GENESIS >> 32), initial)


def hash_hex(h: tuple[int, int]) -> str:
    return f"{(h[1] << 32) | h[0]:016x}"


def parse_hash(text: str) -> tuple[int, int]:
    v = int(text, 16)
    return (v & MASK32, v >> 32)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

DIGITS_V1_SHA256 = "68aea062d35a127749050fa0e52dca09d6569ac08092c925610e0954e172dde2"
DIGITS_V2_APPENDED = 300


def digits_bytes(v1: bytes, version: int) -> bytes:
    """digits@1 is the embedded file; digits@2 appends copies of its first 300
    images shifted one pixel right (each row: 0, then pixels 0..6)."""
    out = bytearray(v1)
    if version >= 2:
        for i in range(DIGITS_V2_APPENDED):
            row = v1[65 * i : 65 * (i + 1)]
            for y in range(8):
                out.append(0)
                out += row[8 * y : 8 * y + 7]
            out.append(row[64])
    return bytes(out)


def load_digits(path: str, version: int):
    with open(path, "rb") as f:
        v1 = f.read()
    if hashlib.sha256(v1).hexdigest() != DIGITS_V1_SHA256:
        raise Unusable(f"{path} is not digits@1 (its SHA-256 is not {DIGITS_V1_SHA256})")
    raw = digits_bytes(v1, version)
    table = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 65)
    x = table[:, :64].astype(F32) * f32(1.0 / 16.0)
    y = table[:, 64].astype(np.int64)
    return x, y, hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------
# The network's arithmetic
# ---------------------------------------------------------------------------


class Net:
    def __init__(self, widths: list[int], activation: str):
        self.widths = widths
        self.activation = activation
        self.layers = []  # (fan_in, fan_out, w offset, b offset)
        at = 0
        for fi, fo in zip(widths, widths[1:]):
            self.layers.append((fi, fo, at, at + fi * fo))
            at += fi * fo + fo
        self.n_params = at
        self.is_weight = np.zeros(at, dtype=bool)
        for fi, fo, w, b in self.layers:
            self.is_weight[w:b] = True
        self.names = []
        for i in range(len(self.layers)):
            self.names += [f"layer{i}.weight", f"layer{i}.bias"]

    def W(self, params, l):
        fi, fo, w, b = self.layers[l]
        return params[w:b].reshape(fi, fo)

    def B(self, params, l):
        fi, fo, w, b = self.layers[l]
        return params[b : b + fo]

    def locate(self, index: int) -> str:
        """`layer{i}.weight[r, c]` or `layer{i}.bias[c]` of a flat index."""
        for i, (fi, fo, w, b) in enumerate(self.layers):
            if w <= index < b:
                r, c = divmod(index - w, fo)
                return f"layer{i}.weight[{r}, {c}]"
            if b <= index < b + fo:
                return f"layer{i}.bias[{index - b}]"
        return f"index {index}"


def matmul_bias(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z[r][j] = (((0 + a[r][0]*w[0][j]) + a[r][1]*w[1][j]) + ...) + b[j];
    a term whose left factor a[r][k] is +-0.0 is skipped (adds +0.0 here,
    which leaves the running sum unchanged), even when w[k][j] is not finite."""
    acc = np.zeros((a.shape[0], w.shape[1]), dtype=F32)
    for k in range(a.shape[1]):
        col = a[:, k : k + 1]
        np.add(acc, np.where(col == 0, f32(0.0), col * w[k : k + 1, :]), out=acc)
    return acc + b[None, :]


def backprop(d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """g[r][k] = sum over j ascending of d[r][j] * w[k][j]."""
    acc = np.zeros((d.shape[0], w.shape[0]), dtype=F32)
    for j in range(d.shape[1]):
        np.add(acc, d[:, j : j + 1] * w[None, :, j], out=acc)
    return acc


def grad_weights(a: np.ndarray, d: np.ndarray, rows: list[int]):
    """dw[k][j] = sum over rows r (in `rows` order) of a[r][k]*d[r][j];
    db[j] = sum over rows of d[r][j]."""
    dw = np.zeros((a.shape[1], d.shape[1]), dtype=F32)
    db = np.zeros(d.shape[1], dtype=F32)
    for r in rows:
        col = a[r][:, None]  # a left factor of +-0.0 skips its terms, as in matmul_bias
        np.add(dw, np.where(col == 0, f32(0.0), col * d[r][None, :]), out=dw)
        np.add(db, d[r], out=db)
    return dw, db


def activate(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "relu":
        return np.where(z > f32(0.0), z, f32(0.0)).astype(F32)
    return tanhf(z.reshape(-1)).reshape(z.shape)


def activate_back(kind: str, h: np.ndarray, g: np.ndarray) -> np.ndarray:
    if kind == "relu":
        return np.where(h > f32(0.0), g, f32(0.0)).astype(F32)
    return g * (f32(1.0) - h * h)


def softmax_xent(z: np.ndarray, labels: np.ndarray, inv_batch=None):
    """Per-row loss, and the gradient (p - onehot) * inv_batch when asked."""
    rows, classes = z.shape
    m = z[:, 0].copy()
    for c in range(1, classes):
        m = np.where(z[:, c] > m, z[:, c], m).astype(F32)
    zy = z[np.arange(rows), labels]
    e = expf((z - m[:, None]).reshape(-1)).reshape(rows, classes)
    s = np.zeros(rows, dtype=F32)
    for c in range(classes):
        s = s + e[:, c]
    loss = logf(s) - (zy - m)
    if inv_batch is None:
        return loss, None
    p = e / s[:, None]
    onehot = np.arange(classes)[None, :] == labels[:, None]
    t = np.where(onehot, p - f32(1.0), p).astype(F32)
    return loss, t * inv_batch


def first_argmax(z: np.ndarray) -> np.ndarray:
    best = np.zeros(z.shape[0], dtype=np.int64)
    bv = z[:, 0].copy()
    for c in range(1, z.shape[1]):
        up = z[:, c] > bv
        best[up] = c
        bv = np.where(up, z[:, c], bv).astype(F32)
    return best


def forward(net: Net, params, x, masks=None, scale=None):
    """Returns (acts, hidden, logits): acts[l] the input of layer l (after
    dropout), hidden[l] the activation of hidden layer l before dropout."""
    acts, hidden = [x], []
    last = len(net.layers) - 1
    for l in range(len(net.layers)):
        z = matmul_bias(acts[l], net.W(params, l), net.B(params, l))
        if l == last:
            return acts, hidden, z
        h = activate(net.activation, z)
        hidden.append(h)
        if masks is not None:
            acts.append(np.where(masks[l], h * scale, f32(0.0)).astype(F32))
        else:
            acts.append(h)
    raise AssertionError("unreachable")


def loss_and_grads(net: Net, params, x, labels, masks, scale, inv_batch, descending: bool):
    """One chunk: (loss sum in the version's row order, flat gradients)."""
    acts, hidden, logits = forward(net, params, x, masks, scale)
    rows = x.shape[0]
    order = list(range(rows - 1, -1, -1)) if descending else list(range(rows))
    losses, delta = softmax_xent(logits, labels, inv_batch)
    total = f32(0.0)
    for r in order:
        total = f32(total + losses[r])
    grads = np.zeros(net.n_params, dtype=F32)
    for l in range(len(net.layers) - 1, -1, -1):
        fi, fo, w, b = net.layers[l]
        dw, db = grad_weights(acts[l], delta, order)
        grads[w:b] = dw.reshape(-1)
        grads[b : b + fo] = db
        if l == 0:
            break
        g = backprop(delta, net.W(params, l))
        if masks is not None:
            g = np.where(masks[l - 1], g * scale, f32(0.0)).astype(F32)
        delta = activate_back(net.activation, hidden[l - 1], g)
    return total, grads


def init_params(net: Net, seed: int) -> np.ndarray:
    stream = Stream("init", seed)
    params = np.zeros(net.n_params, dtype=F32)
    last = len(net.layers) - 1
    for l, (fi, fo, w, b) in enumerate(net.layers):
        if l < last and net.activation == "relu":
            limit = np.sqrt(f32(6.0) / f32(fi))
        else:
            limit = np.sqrt(f32(6.0) / (f32(fi) + f32(fo)))
        words = stream.words(l, 0, fi * fo)
        u = (words >> U32(8)).astype(F32) * f32(1.0 / 16777216.0)
        params[w:b] = (u * f32(2.0) - f32(1.0)) * F32(limit)
    return params


def sgd(net: Net, params, velocity, grads, lr, mu, wd):
    g = np.where(net.is_weight, grads + wd * params, grads).astype(F32)
    velocity = mu * velocity + g
    params = params - lr * velocity
    return params, velocity


# ---------------------------------------------------------------------------
# Readers: manifest, safetensors, checkpoint
# ---------------------------------------------------------------------------


def read_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f, parse_float=Decimal)
    except (OSError, ValueError) as e:
        raise Unusable(f"{path}: not a readable manifest: {e}") from e
    if not isinstance(m, dict) or m.get("manifest_version") != 1:
        raise Unusable(f"{path}: not a manifest of version 1")
    for key in ("config", "seeds", "data", "train_loss", "hash_chain", "initial_weights_hash", "steps_completed"):
        if key not in m:
            raise Unusable(f"{path}: no {key} field")
    if "batches" in m and m["batches"] is not None:
        b = m["batches"]
        if not isinstance(b, list) or not all(isinstance(s, list) and all(isinstance(i, int) for i in s) for s in b):
            raise Unusable(f"{path}: batches must be a list (one per step) of lists of example indices")
    return m


def read_batches(m: dict):
    """The manifest's recorded batches: a list per step of example indices in
    batch order, or None when the run did not record them."""
    return m.get("batches")


def setting(m: dict, key: str):
    try:
        return m["config"][key]["value"]
    except (KeyError, TypeError) as e:
        raise Unusable(f"the manifest's config has no {key}") from e


class SafetensorsError(Exception):
    pass


def read_safetensors(path: str):
    """(tensors, metadata): name -> float32 array of its shape, and the
    `__metadata__` strings. Only F32 tensors, little-endian, row-major."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SafetensorsError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise SafetensorsError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: header is not JSON: {e}") from e
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    tensors = {}
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (lo, hi) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError) as e:
            raise SafetensorsError(f"{path}: tensor {name!r} lacks dtype, shape or data_offsets") from e
        if dtype != "F32":
            raise SafetensorsError(f"{path}: tensor {name!r} is {dtype}, not F32")
        count = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise SafetensorsError(f"{path}: tensor {name!r} has shape {shape}")
            count *= d
        if not (0 <= lo <= hi <= len(data)) or hi - lo != 4 * count:
            raise SafetensorsError(
                f"{path}: tensor {name!r} of shape {shape} has data_offsets [{lo}, {hi}] "
                f"(needs {4 * count} bytes within {len(data)})"
            )
        spans.append((lo, hi, name))
        tensors[name] = np.frombuffer(data[lo:hi], dtype="<f4").astype(F32).reshape(shape)
    spans.sort()
    for (a_lo, a_hi, a), (b_lo, b_hi, b) in zip(spans, spans[1:]):
        if b_lo < a_hi:
            raise SafetensorsError(f"{path}: tensors {a!r} and {b!r} overlap")
    return tensors, meta


def write_safetensors(path: str, tensors: dict, meta: dict) -> None:
    """A minimal writer, for this file's tests (the engine has its own)."""
    header = {"__metadata__": meta} if meta else {}
    at = 0
    blobs = []
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [at, at + len(b)]}
        at += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def flat_params(net: Net, tensors: dict) -> np.ndarray:
    """The spec's flat layout (W0, b0, W1, b1, ...) from named tensors
    `layer{i}.weight` [fan_in, fan_out] and `layer{i}.bias` [fan_out]."""
    out = np.zeros(net.n_params, dtype=F32)
    expected = set(net.names)
    extra = sorted(set(tensors) - expected)
    if extra:
        raise SafetensorsError(f"unexpected tensors {extra}")
    for i, (fi, fo, w, b) in enumerate(net.layers):
        for name, shape, lo, hi in ((f"layer{i}.weight", [fi, fo], w, b), (f"layer{i}.bias", [fo], b, b + fo)):
            if name not in tensors:
                raise SafetensorsError(f"missing tensor {name}")
            t = tensors[name]
            if list(t.shape) != shape:
                raise SafetensorsError(f"{name} has shape {list(t.shape)}, expected {shape}")
            out[lo:hi] = t.reshape(-1)
    return out


def read_weights_file(path: str, net: Net):
    """(step, flat params, velocity or None) from a safetensors file (step in
    __metadata__) or a checkpoint JSON (params_bits, velocity_bits)."""
    with open(path, "rb") as f:
        head = f.read(1)
    if head == b"{":
        with open(path, encoding="utf-8") as f:
            ck = json.load(f)
        try:
            step = int(ck["step"])
            params = from_bits(np.array(ck["params_bits"], dtype=np.uint64).astype(U32))
            velocity = from_bits(np.array(ck["velocity_bits"], dtype=np.uint64).astype(U32))
        except (KeyError, TypeError, ValueError) as e:
            raise Unusable(f"{path}: not a checkpoint (step, params_bits, velocity_bits): {e}") from e
        if len(params) != net.n_params:
            raise Unusable(f"{path}: {len(params)} weights, the network has {net.n_params}")
        return step, params.copy(), velocity.copy()
    try:
        tensors, meta = read_safetensors(path)
        params = flat_params(net, tensors)
    except SafetensorsError as e:
        raise Unusable(str(e)) from e
    if "step" not in meta or not meta["step"].isdigit():
        raise Unusable(f"{path}: __metadata__ has no step (a whole number as a string)")
    return int(meta["step"]), params, None


# ---------------------------------------------------------------------------
# The retrace
# ---------------------------------------------------------------------------


class Mismatch(Exception):
    pass


def describe_f32(x) -> str:
    return f"{float(x)!r} (bits {f32_bits(x):08x})"


def first_difference(net: Net, what: str, ours: np.ndarray, theirs: np.ndarray):
    a, b = bits_of(ours), bits_of(theirs)
    diff = np.nonzero(a != b)[0]
    if len(diff) == 0:
        return None
    i = int(diff[0])
    return (
        f"{what}: {len(diff)} of {len(a)} values differ; first {net.locate(i)} (flat index {i}): "
        f"recorded {describe_f32(theirs[i])}, reference {describe_f32(ours[i])}"
    )


def retrace(path: str, data_path: str, weights_files: list[str], max_steps=None, out=print, record_batches=None) -> int:
    """Retraces the run of manifest `path`; raises Mismatch at the first
    difference. `record_batches`, a list, receives every step's example rows."""
    np.seterr(all="ignore")  # overflow to inf and NaN are part of the arithmetic, not errors
    m = read_manifest(path)
    free = m.get("free") or []
    if "cpu_threads" in free:
        raise Unusable("cpu_threads was free: partial sums were combined in an unrecorded order")
    gpu = [s for s in m.get("backend_history") or [] if s.get("backend") != "cpu" and s.get("to_step", 0) >= s.get("from_step", 1)]
    if gpu:
        raise Unusable("steps ran on the GPU, whose exp/log/tanh are the driver's: the reference follows the CPU engine")
    data = m["data"]
    if data.get("name") != "digits":
        raise Unusable(f"data set {data.get('name')!r}: the reference reads digits only")
    version = int(data["version"])
    x_all, y_all, fingerprint = load_digits(data_path, version)
    if fingerprint != data["fingerprint"]:
        raise Mismatch(f"data fingerprint: recorded {data['fingerprint']}, reference {fingerprint} (digits@{version})")

    hidden_text = str(setting(m, "hidden")).strip()
    hidden = [int(w) for w in hidden_text.split(",")] if hidden_text else []
    activation = setting(m, "activation")
    dropout = decimal_to_f32(setting(m, "dropout"))
    lr = decimal_to_f32(setting(m, "learning_rate"))
    mu = decimal_to_f32(setting(m, "momentum"))
    wd = decimal_to_f32(setting(m, "weight_decay"))
    val_fraction = decimal_to_f32(setting(m, "val_fraction"))
    batch = int(setting(m, "batch_size"))
    steps_cfg = int(setting(m, "steps"))
    eval_every = int(setting(m, "eval_every"))
    engine = int(m["engine_version"])
    if int(setting(m, "engine_version")) != engine:
        raise Unusable("engine_version differs between the manifest and its config")
    if engine not in (1, 2):
        raise Unusable(f"engine version {engine}: the reference knows 1 and 2")
    # Manifests older than the `level` setting are run-to-run.
    level = m["config"].get("level", {}).get("value", "run-to-run")
    if level == "exact":
        raise Unusable("level exact: the reference implements the default arithmetic only (spec: EXACT_ARITHMETIC)")
    chunks = max(1, int(setting(m, "chunks")))
    seeds = {k: int(v) for k, v in m["seeds"].items()}
    descending = engine >= 2

    net = Net([64] + hidden + [10], activation)
    if int(m.get("parameters", net.n_params)) != net.n_params:
        raise Mismatch(f"parameters: recorded {m['parameters']}, reference {net.n_params}")

    n = len(y_all)
    n_val = min(n, int(round_half_away(n * float(val_fraction))))
    shuffle = Stream("shuffle", seeds["shuffle"])
    split = permutation(shuffle, SPLIT_STREAM_ID, n)
    val_idx, train_idx = split[:n_val], split[n_val:]
    per_epoch = len(train_idx) // batch

    params = init_params(net, seeds["init"])
    velocity = np.zeros(net.n_params, dtype=F32)
    h0 = weights_hash(params)
    if hash_hex(h0) != m["initial_weights_hash"]:
        raise Mismatch(f"initial_weights_hash: recorded {m['initial_weights_hash']}, reference {hash_hex(h0)}")
    head = chain_genesis(h0)

    threshold = 0
    scale = f32(1.0)
    drop = dropout > f32(0.0)
    if drop:
        threshold = min(round_half_away(float(dropout) * 4294967296.0), MASK32)
        scale = f32(f32(1.0) / (f32(1.0) - dropout))
    dstream = Stream("dropout", seeds["dropout"])
    inv_batch = f32(f32(1.0) / f32(batch))

    weights_at = {}
    for wf in weights_files:
        step, wp, wv = read_weights_file(wf, net)
        weights_at.setdefault(step, []).append((wf, wp, wv))
    if 0 in weights_at:
        check_weights(net, 0, weights_at[0], params, velocity)

    recorded_losses = [decimal_to_f32(v) for v in m["train_loss"]]
    chain = m["hash_chain"]
    batches = read_batches(m)
    val_curve = {int(p["step"]): p for p in m.get("val_error_curve") or []}
    stopped = m.get("stopped")
    total = int(m["steps_completed"])
    if stopped and stopped.get("kind", "non_finite") == "non_finite":
        total_to_run = int(stopped["step"])  # the failing step is re-run and must fail too
    else:
        total_to_run = total
    if max_steps is not None:
        total_to_run = min(total_to_run, max_steps)
    epoch_cache = (-1, None)
    checked_val = 0
    t = -1
    for t in range(total_to_run):
        epoch, pos = divmod(t, per_epoch)
        if epoch_cache[0] != epoch:
            epoch_cache = (epoch, permutation(shuffle, EPOCH_STREAM_BASE + epoch, len(train_idx)))
        picks = epoch_cache[1][pos * batch : (pos + 1) * batch]
        rows = [train_idx[p] for p in picks]
        if record_batches is not None:
            record_batches.append(rows)
        if batches is not None and t < len(batches) and batches[t] != rows:
            bad = next((i for i, (a, b) in enumerate(zip(batches[t], rows)) if a != b), min(len(rows), len(batches[t])))
            raise Mismatch(
                f"step {t + 1}: batches[{t}] position {bad}: recorded "
                f"{batches[t][bad] if bad < len(batches[t]) else 'nothing'}, reference {rows[bad] if bad < len(rows) else 'nothing'}"
            )
        x = x_all[rows]
        y = y_all[rows]
        masks = None
        if drop:
            masks = []
            for l, width in enumerate(hidden):
                words = dstream.words((l << DROPOUT_LAYER_SHIFT) | t, 0, batch * width)
                masks.append((words >= U32(threshold)).reshape(batch, width))
        partials = []
        for c in range(chunks):
            lo, hi = c * batch // chunks, (c + 1) * batch // chunks
            cm = [mk[lo:hi] for mk in masks] if masks is not None else None
            partials.append(loss_and_grads(net, params, x[lo:hi], y[lo:hi], cm, scale, inv_batch, descending))
        loss_sum, grads = partials[0][0], partials[0][1].copy()
        for ls, g in partials[1:]:
            np.add(grads, g, out=grads)
            loss_sum = f32(loss_sum + ls)
        loss = f32(loss_sum * inv_batch)
        step = t + 1
        if not np.isfinite(loss):
            if stopped and int(stopped["step"]) == step:
                break
            raise Mismatch(f"step {step}: reference loss {describe_f32(loss)} is not finite; the run did not stop here")
        new_p, new_v = sgd(net, params, velocity, grads, lr, mu, wd)
        if not (np.isfinite(new_p).all() and np.isfinite(new_v).all()):
            if stopped and int(stopped["step"]) == step:
                break
            raise Mismatch(f"step {step}: a reference weight is not finite; the run did not stop here")
        if stopped and int(stopped["step"]) == step and stopped.get("kind", "non_finite") == "non_finite":
            raise Mismatch(f"step {step}: the run stopped ({stopped.get('reason')}) but the reference's values are finite")
        params, velocity = new_p, new_v
        if f32_bits(loss) != f32_bits(recorded_losses[t]):
            raise Mismatch(
                f"step {step}: train_loss: recorded {describe_f32(recorded_losses[t])}, reference {describe_f32(loss)}"
            )
        h = weights_hash(params)
        head = chain_link(head, h)
        if hash_hex(head) != chain[t]:
            rec = parse_hash(chain[t])
            lanes_off = [name for name, a, b in (("lo", head[0], rec[0]), ("hi", head[1], rec[1])) if a != b]
            raise Mismatch(
                f"step {step}: hash_chain[{t}]: recorded {chain[t]}, reference {hash_hex(head)} "
                f"(lanes {', '.join(lanes_off)} differ; weights hash {hash_hex(h)})"
            )
        if step in weights_at:
            check_weights(net, step, weights_at[step], params, velocity)
        if step % eval_every == 0 or step == steps_cfg:
            p = val_curve.get(step)
            if p is None:
                raise Mismatch(f"step {step}: the manifest has no validation point here")
            check_val(net, params, x_all[val_idx], y_all[val_idx], p, step)
            checked_val += 1
    stopped_at = f", stopped at step {stopped['step']} as recorded" if stopped and t + 1 == int(stopped["step"]) else ""
    final_checked = max_steps is None
    if final_checked and hash_hex(weights_hash(params)) != m["weights_hash"]:
        # The last finite weights: a run that stopped keeps those of its last completed step.
        raise Mismatch(f"weights_hash: recorded {m['weights_hash']}, reference {hash_hex(weights_hash(params))}")
    missing = sorted(s for s in weights_at if s > total_to_run)
    if missing:
        raise Unusable(f"weights files at steps {missing}, after the last step retraced ({total_to_run})")
    out(
        f"identical: {min(total_to_run, total)} steps (every train_loss bit and hash_chain link){stopped_at}, "
        f"{checked_val} validation points, "
        + ("initial and final weight hashes" if final_checked else "initial weight hash")
        + (f", batches of {min(len(batches), total_to_run)} steps" if batches is not None else "")
        + (f", weights files at steps {sorted(weights_at)}" if weights_at else "")
    )
    return 0


def check_weights(net: Net, step: int, files, params, velocity):
    for name, wp, wv in files:
        d = first_difference(net, f"step {step}: {name}: weights", params, wp)
        if d:
            raise Mismatch(d)
        if wv is not None:
            d = first_difference(net, f"step {step}: {name}: velocities", velocity, wv)
            if d:
                raise Mismatch(d)


def check_val(net: Net, params, xv, yv, point, step):
    _, _, logits = forward(net, params, xv)
    wrong = int((first_argmax(logits) != yv).sum())
    losses, _ = softmax_xent(logits, yv)
    s = 0.0
    for v in losses:  # f64, sequential, split order
        s += float(v)
    nv = len(yv)
    err, mean = wrong / nv, s / nv
    rec_err = float(point["val_error"])
    if rec_err != err:
        raise Mismatch(f"step {step}: val_error: recorded {rec_err!r}, reference {err!r} ({wrong} of {nv})")
    rec_loss = point.get("val_loss")
    ours = mean if np.isfinite(mean) else None
    if (None if rec_loss is None else float(rec_loss)) != ours:
        raise Mismatch(f"step {step}: val_loss: recorded {rec_loss}, reference {ours!r}")


def round_half_away(v: float) -> int:
    """Rust's f64::round: halfway cases away from zero."""
    f = Fraction(v)
    n = int(abs(f) + Fraction(1, 2))
    return n if v >= 0 else -n


# ---------------------------------------------------------------------------
# Self-tests (readers on hand-made files, integer primitives, conversions)
# ---------------------------------------------------------------------------


def selftest(workdir: str) -> int:
    os.makedirs(workdir, exist_ok=True)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    # ChaCha20: the all-zero key, counter 0, stream 0 keystream 76 b8 e0 ad a0 f1 3d 90 ...
    b = chacha20_blocks(bytes(32), 0, 0, 2)
    check(int(b[0, 0]) == 0xADE0B876 and int(b[0, 1]) == 0x903DF1A0, "chacha20 zero-key vector")
    # Addressing: word p is word p % 16 of block p / 16, whatever the start.
    s = Stream("dropout", 7)
    w = s.words(3, 5, 40)
    check(list(s.words(3, 21, 4)) == list(w[16:20]), "stream words independent of the start")
    # Lemire: below(1) is always 0; values in range.
    r = s.reader(9)
    check(all(r.below(1) == 0 for _ in range(5)), "below(1)")
    check(all(0 <= r.below(7) < 7 for _ in range(100)), "below(7) range")
    p = permutation(s, 1, 100)
    check(sorted(p) == list(range(100)) and p != list(range(100)), "permutation")
    # murmur3_32 known values: one zero word with seed 0 -> 0x2362f9de; empty input with seed 1 -> 0x514e28b7;
    # ff ff ff ff with seed 0 -> 0x76293b50.
    check(_murmur(0, _premix([0])) == 0x2362F9DE, "murmur3 of one zero word")
    check(_murmur(1, []) == 0x514E28B7, "murmur3 of nothing, seed 1")
    check(_murmur(0, _premix([0xFFFFFFFF])) == 0x76293B50, "murmur3 of ffffffff")
    check(hash_hex((0x01234567, 0x89ABCDEF)) == "89abcdef01234567", "hash hex: hi then lo")
    check(parse_hash("89abcdef01234567") == (0x01234567, 0x89ABCDEF), "hash parse")
    # Decimal to f32, exactly.
    check(f32_bits(decimal_to_f32("0.1")) == 0x3DCCCCCD, "0.1 as f32")
    check(f32_bits(decimal_to_f32("2.4811019897460938")) == 0x401ECA60, "a recorded loss")
    check(f32_bits(decimal_to_f32("1e-45")) == 1, "smallest subnormal")
    check(f32_bits(decimal_to_f32("3.4028235e38")) == 0x7F7FFFFF, "largest f32")
    check(f32_bits(decimal_to_f32("16777217")) == 0x4B800000, "tie to even")
    check(round_half_away(2.5) == 3 and round_half_away(359.4) == 359, "round half away")
    # The dropout threshold of p = 0.1 (from the f32 setting): 429496736.
    check(round_half_away(float(decimal_to_f32("0.1")) * 4294967296.0) == 429496736, "dropout threshold of 0.1")

    # safetensors: a hand-made file read back exactly, with its metadata.
    net = Net([3, 4, 2], "relu")
    rng = np.random.default_rng(5)
    tensors = {}
    for i, (fi, fo, _, _) in enumerate(net.layers):
        tensors[f"layer{i}.weight"] = rng.standard_normal((fi, fo)).astype(F32)
        tensors[f"layer{i}.bias"] = rng.standard_normal(fo).astype(F32)
    tensors["layer0.bias"][1] = f32(-0.0)
    tensors["layer1.bias"][0] = f32_from_bits(1)  # a subnormal survives
    path = os.path.join(workdir, "hand.safetensors")
    write_safetensors(path, tensors, {"step": "17", "format": "pt"})
    back, meta = read_safetensors(path)
    check(meta == {"step": "17", "format": "pt"}, "safetensors metadata")
    check(all(np.array_equal(bits_of(back[k]), bits_of(tensors[k])) for k in tensors), "safetensors tensors bit for bit")
    flat = flat_params(net, back)
    check(f32_bits(flat[3 * 4 + 1]) == 0x80000000, "flat layout: layer0.bias[1] after W0")
    check(net.locate(3 * 4 + 4 + 4 * 2 + 1) == "layer1.bias[1]", "locate a flat index")
    step, wp, _ = read_weights_file(path, net)
    check(step == 17 and np.array_equal(bits_of(wp), bits_of(flat)), "weights file: step and weights")
    # A hand-built file in the byte layout of the format (header written by hand, not by write_safetensors).
    hdr = b'{"layer0.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"step":"3"}}'
    raw = struct.pack("<Q", len(hdr)) + hdr + struct.pack("<2f", 1.5, -2.0)
    p2 = os.path.join(workdir, "byhand.safetensors")
    with open(p2, "wb") as f:
        f.write(raw)
    t2, m2 = read_safetensors(p2)
    check(m2 == {"step": "3"} and list(t2["layer0.bias"]) == [1.5, -2.0], "safetensors by hand")
    # Refusals: wrong dtype, bad offsets, truncated header, wrong shape, missing tensor.
    bad = {
        "dtype": hdr.replace(b'"F32"', b'"F16"'),
        "offsets": hdr.replace(b"[0,8]", b"[0,12]"),
    }
    for what, h in bad.items():
        pb = os.path.join(workdir, f"bad-{what}.safetensors")
        with open(pb, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + struct.pack("<2f", 1.5, -2.0))
        try:
            read_safetensors(pb)
            failures.append(f"safetensors with bad {what} accepted")
        except SafetensorsError:
            pass
    pt = os.path.join(workdir, "bad-truncated.safetensors")
    with open(pt, "wb") as f:
        f.write(struct.pack("<Q", 1000) + b"{}")
    try:
        read_safetensors(pt)
        failures.append("truncated safetensors accepted")
    except SafetensorsError:
        pass
    wrong = dict(tensors)
    wrong["layer1.weight"] = tensors["layer1.weight"].T.copy()
    try:
        flat_params(net, wrong)
        failures.append("a transposed weight accepted")
    except SafetensorsError:
        pass
    missing = {k: v for k, v in tensors.items() if k != "layer1.bias"}
    try:
        flat_params(net, missing)
        failures.append("a missing tensor accepted")
    except SafetensorsError:
        pass

    # Manifest batches: read when present, None when absent, refused when malformed.
    base = {
        "manifest_version": 1,
        "config": {},
        "seeds": {},
        "data": {},
        "train_loss": [],
        "hash_chain": [],
        "initial_weights_hash": "0" * 16,
        "steps_completed": 0,
    }
    pm = os.path.join(workdir, "batches.json")
    for batches, ok in (([[3, 1, 2], [0, 4, 5]], True), (None, True), ([[1, "x"]], False), ({"0": [1]}, False)):
        doc = dict(base)
        if batches is not None:
            doc["batches"] = batches
        with open(pm, "w") as f:
            json.dump(doc, f)
        try:
            got = read_batches(read_manifest(pm))
            check(ok and got == batches, f"batches {batches!r}")
        except Unusable:
            check(not ok, f"batches {batches!r} refused")

    # Elementary functions: fixed points and known bits (libm 0.2.16, checked against the crate by run.sh).
    check(f32_bits(expf(f32(0.0))[0]) == 0x3F800000, "expf(0) = 1")
    check(f32_bits(expf(f32(1.0))[0]) == 0x402DF854, "expf(1) bits (DETERMINISM table: Rust CPU 0x402df854)")
    check(f32_bits(logf(f32(1.0))[0]) == 0, "logf(1) = +0")
    check(f32_bits(tanhf(f32(-0.0))[0]) == 0x80000000, "tanhf(-0) = -0")
    check(float(tanhf(f32(20.0))[0]) == 1.0, "tanhf(20) = 1")

    for f in failures:
        print(f"selftest FAILED: {f}")
    print("selftest: passed" if not failures else f"selftest: {len(failures)} failed")
    return 1 if failures else 0


def elementary(folder: str) -> int:
    """Compares expf/logf/tanhf/expm1f with tables written by the libm crate
    (`tests/reference/libm_sweep.rs`): FOLDER/NAME.bin, pairs of little-endian
    u32 (input bits, output bits)."""
    np.seterr(all="ignore")
    fns = {"expf": expf, "logf": logf, "tanhf": tanhf, "expm1f": expm1f}
    bad = 0
    for name, fn in fns.items():
        path = os.path.join(folder, f"{name}.bin")
        try:
            table = np.fromfile(path, dtype="<u4").reshape(-1, 2)
        except (OSError, ValueError) as e:
            raise Unusable(f"{path}: not a table of (input, output) bit pairs: {e}") from e
        xin = from_bits(table[:, 0].astype(U32))
        want = table[:, 1].astype(U32)
        got = bits_of(fn(xin))
        # NaN results: any NaN matches a NaN (payloads are not part of the spec).
        nan_ok = np.isnan(from_bits(want)) & np.isnan(from_bits(got))
        off = np.nonzero((got != want) & ~nan_ok)[0]
        print(f"{name}: {len(table)} inputs, {len(off)} differ from libm {LIBM_VERSION}")
        for i in off[:5]:
            x = int(table[i, 0])
            print(f"  {name}({x:08x} = {float(xin[i])!r}): libm {int(want[i]):08x}, reference {int(got[i]):08x}")
        bad += len(off)
    return 1 if bad else 0


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("retrace", help="retrace a manifest bit for bit")
    r.add_argument("manifest")
    r.add_argument("--data", default=os.path.join(root, "data", "digits-v1.bin"), help="the embedded digits@1 bytes")
    r.add_argument("--weights", action="append", default=[], help="a safetensors or checkpoint file to compare at its step")
    r.add_argument("--steps", type=int, help="retrace only the first N steps")
    s = sub.add_parser("selftest", help="unit tests of the readers and primitives")
    s.add_argument("--workdir", default=os.path.join(root, "target", "reference", "selftest"))
    e = sub.add_parser("elementary", help="compare expf/logf/tanhf/expm1f with tables of the libm crate")
    e.add_argument("folder")
    t = sub.add_parser("safetensors", help="print a safetensors file")
    t.add_argument("file")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "retrace":
            return retrace(a.manifest, a.data, a.weights, a.steps)
        if a.cmd == "selftest":
            return selftest(a.workdir)
        if a.cmd == "elementary":
            return elementary(a.folder)
        if a.cmd == "safetensors":
            tensors, meta = read_safetensors(a.file)
            print(f"__metadata__: {meta}")
            for k, v in tensors.items():
                print(f"{k}: F32 {list(v.shape)}")
            return 0
    except Mismatch as e:
        print(f"MISMATCH {e}")
        return 1
    except (Unusable, SafetensorsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
