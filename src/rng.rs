//! Named, counter-addressed random streams (spec: the stream items).
//!
//! Every value the engine draws is addressed by (stream, stream id, word
//! position), never by how many values were drawn before, so a resumed run,
//! another thread count or the GPU draw the same numbers. Addressing per
//! source is written down in [`crate::spec`].

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{chacha, spec};

/// A named stream of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Weight initialisation.
    Init,
    /// Train/validation split and per-epoch data order.
    Shuffle,
    /// Dropout masks.
    Dropout,
    /// Synthetic data generation.
    Data,
}

impl Stream {
    /// Every stream, in [`spec::STREAM_NAMES`] order.
    pub const ALL: [Stream; 4] = [Stream::Init, Stream::Shuffle, Stream::Dropout, Stream::Data];

    /// The stream's name as written in manifests and on the command line.
    pub fn name(self) -> &'static str {
        spec::STREAM_NAMES[self as usize]
    }

    /// Parses a stream name.
    pub fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The 64-bit seed of every stream. Pinned streams take the master seed;
/// a stream set free gets a fresh seed from the platform's entropy, which is
/// recorded here so the run can still be replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSeeds {
    /// Seeds as decimal strings (JSON numbers above 2^53 would lose bits in JS).
    #[serde(with = "seed_strings")]
    pub init: u64,
    #[serde(with = "seed_strings")]
    pub shuffle: u64,
    #[serde(with = "seed_strings")]
    pub dropout: u64,
    #[serde(with = "seed_strings")]
    pub data: u64,
}

impl StreamSeeds {
    /// Every stream seeded with the master seed.
    pub fn from_master(master: u64) -> StreamSeeds {
        StreamSeeds { init: master, shuffle: master, dropout: master, data: master }
    }

    /// The seed of one stream.
    pub fn get(&self, stream: Stream) -> u64 {
        match stream {
            Stream::Init => self.init,
            Stream::Shuffle => self.shuffle,
            Stream::Dropout => self.dropout,
            Stream::Data => self.data,
        }
    }

    /// Replaces the seed of one stream.
    pub fn set(&mut self, stream: Stream, seed: u64) {
        match stream {
            Stream::Init => self.init = seed,
            Stream::Shuffle => self.shuffle = seed,
            Stream::Dropout => self.dropout = seed,
            Stream::Data => self.data = seed,
        }
    }
}

mod seed_strings {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<u64>()
            .map_err(|_| serde::de::Error::custom(format!("seed {text:?} is not a whole number from 0 to 2^64-1")))
    }
}

/// The ChaCha20 key of a stream: `SHA-256(prefix || name || ":" || seed_le)`.
pub fn stream_key(stream: Stream, seed: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(spec::STREAM_KEY_PREFIX.as_bytes());
    h.update(stream.name().as_bytes());
    h.update(b":");
    h.update(seed.to_le_bytes());
    h.finalize().into()
}

/// A keyed stream from which words are read at explicit addresses.
#[derive(Clone)]
pub struct StreamRng {
    rng: ChaCha20Rng,
    /// The key's words, for [`chacha::fill`] (the same key as `rng`'s).
    key: [u32; 8],
}

impl StreamRng {
    /// The stream `stream` seeded with `seed`.
    pub fn new(stream: Stream, seed: u64) -> StreamRng {
        let key = stream_key(stream, seed);
        StreamRng { rng: ChaCha20Rng::from_seed(key), key: chacha::key_words(&key) }
    }

    /// Fills `out` with the words at positions `start..start + out.len()` of
    /// stream id `id`.
    /// The words are ChaCha20's, as `rand_chacha` gives them (checked by
    /// `chacha::tests`), computed four blocks side by side ([`chacha::fill`]):
    /// `rand_chacha` has no SIMD path in wasm, where it took a quarter of a
    /// small network's step.
    pub fn fill_words(&mut self, id: u64, start: u64, out: &mut [u32]) {
        chacha::fill(&self.key, id, start, out);
    }

    /// [`StreamRng::fill_words`] read word by word from `rand_chacha`: the
    /// reference the tests compare the fast path with.
    #[cfg(test)]
    pub fn fill_words_reference(&mut self, id: u64, start: u64, out: &mut [u32]) {
        self.seek(id, start);
        for w in out.iter_mut() {
            *w = self.rng.next_u32();
        }
    }

    /// A sequential reader positioned at word `start` of stream id `id`.
    pub fn reader(&mut self, id: u64, start: u64) -> &mut StreamRng {
        self.seek(id, start);
        self
    }

    /// The next word of the current position.
    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// A uniform integer in `0..n` (n >= 1) by Lemire's multiply-and-reject.
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n >= 1);
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        let mut low = m as u32;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                m = u64::from(self.next_u32()) * u64::from(n);
                low = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// A uniform f32 in [0, 1) with 24 random bits (exact conversion).
    pub fn unit_f32(&mut self) -> f32 {
        unit_from_word(self.next_u32())
    }

    fn seek(&mut self, id: u64, start: u64) {
        // set_stream keeps the word position; setting the position after it
        // makes the address explicit.
        self.rng.set_stream(id);
        self.rng.set_word_pos(u128::from(start));
    }
}

/// Maps a 32-bit word to [0, 1) using its top 24 bits: exact in f32.
pub fn unit_from_word(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A Fisher-Yates permutation of `0..n` drawn from stream id `id` of `rng`
/// (spec: [`spec::SPLIT_STREAM_ID`]).
pub fn permutation(rng: &mut StreamRng, id: u64, n: usize) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    let r = rng.reader(id, 0);
    for i in (1..n).rev() {
        let j = r.below(i as u32 + 1) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing_is_independent_of_history() {
        let mut a = StreamRng::new(Stream::Dropout, 7);
        let mut b = StreamRng::new(Stream::Dropout, 7);
        let mut w1 = [0u32; 8];
        let mut w2 = [0u32; 8];
        // Read other addresses first on `a`; the words at (3, 100) must not move.
        let mut junk = [0u32; 37];
        a.fill_words(9, 5, &mut junk);
        a.fill_words(3, 100, &mut w1);
        b.fill_words(3, 100, &mut w2);
        assert_eq!(w1, w2);
        let mut w3 = [0u32; 4];
        b.fill_words(3, 102, &mut w3);
        assert_eq!(&w1[2..6], &w3[..]);
    }

    #[test]
    fn streams_with_the_same_seed_differ() {
        let mut a = StreamRng::new(Stream::Init, 1);
        let mut b = StreamRng::new(Stream::Shuffle, 1);
        assert_ne!(a.reader(0, 0).next_u32(), b.reader(0, 0).next_u32());
    }

    #[test]
    fn below_is_in_range_and_permutation_is_a_permutation() {
        let mut r = StreamRng::new(Stream::Shuffle, 3);
        let p = permutation(&mut r, 1, 1000);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<u32>>());
        assert_ne!(p, s, "a permutation of 1000 elements came out sorted");
    }

    #[test]
    fn unit_f32_range() {
        assert_eq!(unit_from_word(0), 0.0);
        assert!(unit_from_word(u32::MAX) < 1.0);
    }
}
