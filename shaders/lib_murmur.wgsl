// lib_murmur.wgsl: not a kernel: the murmur3_32 word step and finaliser the
// hash kernels share, prepended to every kernel by src/gpu.rs with the
// prelude. Spec: HASH_LANE_SEEDS / HASH_CHUNK_WORDS; CPU twin: src/hash.rs.
fn rotl(x: u32, n: u32) -> u32 { return (x << n) | (x >> (32u - n)); }

fn mix_word(h: u32, w: u32) -> u32 {
    var k = w * 0xcc9e2d51u;
    k = rotl(k, 15u);
    k = k * 0x1b873593u;
    let x = h ^ k;
    return rotl(x, 13u) * 5u + 0xe6546b64u;
}

fn finish(h0: u32, count: u32) -> u32 {
    var h = h0 ^ (count * 4u);
    h = h ^ (h >> 16u);
    h = h * 0x85ebca6bu;
    h = h ^ (h >> 13u);
    h = h * 0xc2b2ae35u;
    return h ^ (h >> 16u);
}
