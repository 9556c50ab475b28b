//! The weight hash and the hash chain (layout in [`crate::spec`]).
//!
//! 32-bit integer operations only, over the exact bits of the parameters, in
//! a fixed tree of per-chunk leaves, so the GPU can compute the same value
//! over its own buffers in parallel.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spec;

/// A 64-bit hash made of two independent 32-bit lanes; written as 16 hex
/// digits (`hi` then `lo`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash64 {
    pub lo: u32,
    pub hi: u32,
}

impl Hash64 {
    /// The hash as one u64 (`hi << 32 | lo`).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.hi) << 32) | u64::from(self.lo)
    }

    /// The inverse of [`Hash64::to_u64`].
    pub fn from_u64(v: u64) -> Hash64 {
        Hash64 { lo: v as u32, hi: (v >> 32) as u32 }
    }

    /// Parses 16 hex digits.
    pub fn parse(text: &str) -> Option<Hash64> {
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(Hash64::from_u64)
    }
}

impl fmt::Display for Hash64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.to_u64())
    }
}

impl fmt::Debug for Hash64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Hash64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Hash64::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a hash (16 hex digits)")))
    }
}

/// One lane of murmur3_32 (x86_32 variant) over 32-bit words.
#[derive(Clone, Copy)]
struct Murmur {
    h: u32,
    words: u32,
}

/// murmur3's scrambling of one input word, the same for every lane.
#[inline(always)]
fn scramble(k: u32) -> u32 {
    k.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593)
}

impl Murmur {
    fn new(seed: u32) -> Murmur {
        Murmur { h: seed, words: 0 }
    }

    #[cfg(test)]
    fn word(&mut self, k: u32) {
        self.mix(scramble(k));
    }

    /// Takes in a word already scrambled ([`scramble`]).
    #[inline(always)]
    fn mix(&mut self, k: u32) {
        self.h ^= k;
        self.h = self.h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        self.words = self.words.wrapping_add(1);
    }

    fn finish(self) -> u32 {
        let mut h = self.h ^ self.words.wrapping_mul(4);
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        h
    }
}

/// The two lanes' murmur states of a hash whose seeds are xored with `seed_xor`.
fn start(seed_xor: u32) -> [Murmur; 2] {
    spec::HASH_LANE_SEEDS.map(|seed| Murmur::new(seed ^ seed_xor))
}

fn finish(m: [Murmur; 2]) -> Hash64 {
    Hash64 { lo: m[0].finish(), hi: m[1].finish() }
}

/// Both lanes over `words`, in one pass (each word scrambled once).
fn lanes(seed_xor: u32, words: impl Iterator<Item = u32>) -> Hash64 {
    let mut m = start(seed_xor);
    for w in words {
        let k = scramble(w);
        m[0].mix(k);
        m[1].mix(k);
    }
    finish(m)
}

/// The hash of one leaf: the chunk `index` of the parameter words.
pub fn leaf_hash(index: usize, chunk: &[f32]) -> Hash64 {
    lanes(index as u32, chunk.iter().map(|v| v.to_bits()))
}

/// The hashes of the leaves of `words`, which start at leaf `first` of a
/// buffer ([`spec::HASH_CHUNK_WORDS`] words a leaf, the last one possibly
/// shorter), appended to `out`: each is [`leaf_hash`]'s value. Four whole
/// leaves are hashed side by side, word by word ([`group4`]), so that
/// their eight murmur chains (each a serial dependency) overlap in the
/// processor, or run in vector lanes.
pub fn leaf_hashes(first: usize, words: &[f32], out: &mut Vec<Hash64>) {
    const GROUP: usize = 4;
    let leaf = spec::HASH_CHUNK_WORDS;
    let mut index = first;
    let mut rest = words;
    while rest.len() >= GROUP * leaf {
        let (group, tail) = rest.split_at(GROUP * leaf);
        out.extend(group4(index, group));
        index += GROUP;
        rest = tail;
    }
    for (i, chunk) in rest.chunks(leaf).enumerate() {
        out.push(leaf_hash(index + i, chunk));
    }
}

/// Four whole leaves (`group`: leaves `index .. index + 4`, one after the
/// other), leaf `index + i` in lane `i` of [`crate::lanes`] vectors (wasm
/// SIMD128, SSE2): lane by lane the scalar operations of [`Murmur`], words
/// read four at a time from each leaf and transposed.
fn group4(index: usize, group: &[f32]) -> [Hash64; 4] {
    use crate::lanes::{self, add, mul, rotl, splat, times5, transpose, xor, Lanes};
    const _: () = assert!(spec::HASH_CHUNK_WORDS % 4 == 0, "leaves are read four words at a time");
    let leaf = spec::HASH_CHUNK_WORDS;
    let first = index as u32;
    let ids = lanes::from_array(std::array::from_fn(|i| first.wrapping_add(i as u32)));
    let [seed0, seed1] = spec::HASH_LANE_SEEDS;
    let (mut h0, mut h1) = (xor(splat(seed0), ids), xor(splat(seed1), ids));
    let (c1, c2, c3) = (splat(0xcc9e_2d51), splat(0x1b87_3593), splat(0xe654_6b64));
    let five = lanes::Times5::new();
    for j in (0..leaf).step_by(4) {
        // rows[i]: words j..j+4 of leaf i; cols[q]: word j+q of leaves 0..4.
        let rows: [Lanes; 4] = std::array::from_fn(|i| lanes::load_bits(&group[i * leaf + j..]));
        for w in transpose(rows) {
            let k = mul(rotl(mul(w, c1), 15), c2);
            h0 = add(times5(rotl(xor(h0, k), 13), five), c3);
            h1 = add(times5(rotl(xor(h1, k), 13), five), c3);
        }
    }
    let (a, b) = (lanes::to_array(h0), lanes::to_array(h1));
    let words = leaf as u32;
    std::array::from_fn(|i| finish([Murmur { h: a[i], words }, Murmur { h: b[i], words }]))
}

/// The weight hash of a flat parameter buffer (spec: [`spec::HASH_CHUNK_WORDS`]).
pub fn weights_hash(params: &[f32]) -> Hash64 {
    let mut leaves = Vec::with_capacity(params.len().div_ceil(spec::HASH_CHUNK_WORDS));
    leaf_hashes(0, params, &mut leaves);
    root_hash(params.len(), &leaves)
}

/// The root over the leaf hashes of a buffer of `n_words` words.
pub fn root_hash(n_words: usize, leaves: &[Hash64]) -> Hash64 {
    lanes(n_words as u32, leaves.iter().flat_map(|l| [l.lo, l.hi]))
}

/// One link of the chain: `mix(prev, current)`.
pub fn chain_link(prev: Hash64, current: Hash64) -> Hash64 {
    lanes(0, [prev.lo, prev.hi, current.lo, current.hi].into_iter())
}

/// The first link, before any step: `mix(CHAIN_GENESIS, hash(initial weights))`.
pub fn chain_genesis(initial: Hash64) -> Hash64 {
    chain_link(Hash64::from_u64(spec::CHAIN_GENESIS), initial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_reference_vectors() {
        // murmur3_x86_32 of 4-byte little-endian inputs, known values.
        let mut m = Murmur::new(0);
        m.word(0);
        assert_eq!(m.finish(), 0x2362_f9de);
        // murmur3_32("", seed=1) = 0x514e28b7 and ("\xff\xff\xff\xff", 0) = 0x76293b50.
        assert_eq!(textbook_murmur3(&[], 1), 0x514e_28b7);
        assert_eq!(textbook_murmur3(&[0xff; 4], 0), 0x7629_3b50);
    }

    fn textbook_murmur3(data: &[u8], seed: u32) -> u32 {
        let (c1, c2) = (0xcc9e2d51u32, 0x1b873593u32);
        let mut h = seed;
        let mut chunks = data.chunks_exact(4);
        for c in &mut chunks {
            let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            k = k.wrapping_mul(c1).rotate_left(15).wrapping_mul(c2);
            h ^= k;
            h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe6546b64);
        }
        assert!(chunks.remainder().is_empty());
        h ^= data.len() as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85ebca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2ae35);
        h ^ (h >> 16)
    }

    #[test]
    fn word_wise_equals_textbook_on_many_lengths() {
        for n in [0usize, 1, 2, 7, 64, 1023, 1024, 1025] {
            let words: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut m = Murmur::new(42);
            for &w in &words {
                m.word(w);
            }
            assert_eq!(m.finish(), textbook_murmur3(&bytes, 42), "length {n}");
        }
    }

    #[test]
    fn hash_sees_every_bit_and_position() {
        let base: Vec<f32> = (0..3000).map(|i| i as f32 * 0.25).collect();
        let h0 = weights_hash(&base);
        for idx in [0usize, 1023, 1024, 2999] {
            let mut v = base.clone();
            v[idx] = f32::from_bits(v[idx].to_bits() ^ 1);
            assert_ne!(weights_hash(&v), h0, "flipping the low bit of word {idx} did not change the hash");
        }
        let mut swapped = base.clone();
        swapped.swap(5, 6);
        assert_ne!(weights_hash(&swapped), h0);
        // +0.0 and -0.0 are different bits, so different hashes.
        let mut z = base.clone();
        z[0] = -0.0;
        assert_ne!(weights_hash(&z), h0);
    }

    #[test]
    fn leaves_side_by_side_equal_one_by_one() {
        let leaf = spec::HASH_CHUNK_WORDS;
        for n in [0usize, 5, leaf, 4 * leaf - 1, 4 * leaf, 4 * leaf + 1, 9 * leaf + 17] {
            let words: Vec<f32> = (0..n).map(|i| f32::from_bits((i as u32).wrapping_mul(2_654_435_761))).collect();
            for first in [0usize, 3] {
                let one_by_one: Vec<Hash64> =
                    words.chunks(leaf).enumerate().map(|(i, c)| leaf_hash(first + i, c)).collect();
                let mut grouped = Vec::new();
                leaf_hashes(first, &words, &mut grouped);
                assert_eq!(grouped, one_by_one, "{n} words from leaf {first}");
            }
        }
    }

    #[test]
    fn hash_text_round_trips() {
        let h = Hash64 { lo: 0x0123_4567, hi: 0x89ab_cdef };
        assert_eq!(h.to_string(), "89abcdef01234567");
        assert_eq!(Hash64::parse(&h.to_string()), Some(h));
        assert_eq!(Hash64::parse("xyz"), None);
    }
}
