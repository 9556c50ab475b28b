// hash_root.wgsl: the weight hash's root over the leaves (seeds xor the word
// count), then the chain link mix(head, root) (seeds unchanged), as
// src/hash.rs. Writes the link and the root to the hash ring at the step's
// slot and moves the head. One thread; integer operations only.
// Bindings: 0 dims (n = words, k = leaves, u0 = head index in ring),
// 1 step (slot), 2 leaves, 3 ring [4 words per slot, then the head's 2].
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> leaves: array<u32>;
@group(0) @binding(3) var<storage, read_write> ring: array<u32>;

@compute @workgroup_size(1)
fn main() {
    f_init(dims.u3);
    var lo = HASH_SEED_LO ^ dims.n;
    var hi = HASH_SEED_HI ^ dims.n;
    for (var i = 0u; i < 2u * dims.k; i = i + 1u) {
        lo = mix_word(lo, leaves[i]);
        hi = mix_word(hi, leaves[i]);
    }
    let root_lo = finish(lo, 2u * dims.k);
    let root_hi = finish(hi, 2u * dims.k);
    let head = dims.u0;
    var c_lo = HASH_SEED_LO;
    var c_hi = HASH_SEED_HI;
    let prev_lo = ring[head];
    let prev_hi = ring[head + 1u];
    c_lo = mix_word(c_lo, prev_lo); c_lo = mix_word(c_lo, prev_hi);
    c_lo = mix_word(c_lo, root_lo); c_lo = mix_word(c_lo, root_hi);
    c_hi = mix_word(c_hi, prev_lo); c_hi = mix_word(c_hi, prev_hi);
    c_hi = mix_word(c_hi, root_lo); c_hi = mix_word(c_hi, root_hi);
    let link_lo = finish(c_lo, 4u);
    let link_hi = finish(c_hi, 4u);
    let at = 4u * step.slot;
    ring[at] = link_lo;
    ring[at + 1u] = link_hi;
    ring[at + 2u] = root_lo;
    ring[at + 3u] = root_hi;
    ring[head] = link_lo;
    ring[head + 1u] = link_hi;
}
