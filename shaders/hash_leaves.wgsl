// hash_leaves.wgsl: the leaves of the weight hash: murmur3_32, two lanes, over
// the u32 bits of each HASH_CHUNK_WORDS-word chunk of the parameters, seeds
// HASH_SEED_LO / HASH_SEED_HI xor the chunk index. Integer operations only,
// so equal to src/hash.rs bit for bit.
// Bindings: 0 dims (n = words), 1 params (as u32), 2 leaves [2 per leaf].
// Workgroup: WG, one thread per leaf.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> leaves: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let leaf = gid.x;
    let start = leaf * HASH_CHUNK_WORDS;
    if (start >= dims.n) { return; }
    let end = min(dims.n, start + HASH_CHUNK_WORDS);
    var lo = HASH_SEED_LO ^ leaf;
    var hi = HASH_SEED_HI ^ leaf;
    for (var i = start; i < end; i = i + 1u) {
        let w = words[i];
        lo = mix_word(lo, w);
        hi = mix_word(hi, w);
    }
    leaves[2u * leaf] = finish(lo, end - start);
    leaves[2u * leaf + 1u] = finish(hi, end - start);
}
