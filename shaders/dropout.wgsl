// dropout.wgsl: inverted dropout with masks drawn by ChaCha20 on the GPU.
// Spec: DROPOUT_LAYER_SHIFT / CHACHA_ROUNDS: the mask of (step t, layer l,
// example r, unit u) is word p = r * width + u of stream id (l << DROPOUT_LAYER_SHIFT) | t,
// i.e. word p % CHACHA_BLOCK_WORDS of block p / CHACHA_BLOCK_WORDS; kept when word >= threshold. Equal bit
// for bit to src/chacha.rs and rand_chacha (tests/gpu.rs checks it).
// Bindings: 0 dims (rows, n = width, u0 = layer, u1 = threshold, f0 = scale),
// 1 step (t), 2 key [8 words], 3 h [rows*n], 4 out [rows*n], 5 mask [rows*n].
// Workgroup: WG, one thread per CHACHA_BLOCK_WORDS-word block.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<uniform> key: array<vec4<u32>, 2>;
@group(0) @binding(3) var<storage, read> h: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mask: array<u32>;

fn quarter(s: ptr<function, array<u32, CHACHA_BLOCK_WORDS>>, a: u32, b: u32, c: u32, d: u32) {
    (*s)[a] = (*s)[a] + (*s)[b]; (*s)[d] = rotl((*s)[d] ^ (*s)[a], 16u);
    (*s)[c] = (*s)[c] + (*s)[d]; (*s)[b] = rotl((*s)[b] ^ (*s)[c], 12u);
    (*s)[a] = (*s)[a] + (*s)[b]; (*s)[d] = rotl((*s)[d] ^ (*s)[a], 8u);
    (*s)[c] = (*s)[c] + (*s)[d]; (*s)[b] = rotl((*s)[b] ^ (*s)[c], 7u);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let blk = gid.x + gid.y * WG * MAX_GROUPS_X;
    let total = dims.rows * dims.n;
    if (blk * CHACHA_BLOCK_WORDS >= total) { return; }
    var init: array<u32, CHACHA_BLOCK_WORDS>;
    init[0] = 0x61707865u; init[1] = 0x3320646eu; init[2] = 0x79622d32u; init[3] = 0x6b206574u;
    init[4] = key[0].x; init[5] = key[0].y; init[6] = key[0].z; init[7] = key[0].w;
    init[8] = key[1].x; init[9] = key[1].y; init[10] = key[1].z; init[11] = key[1].w;
    init[12] = blk; init[13] = 0u;
    // Stream id (layer << DROPOUT_LAYER_SHIFT) | t with t < 2^32: low word t,
    // high word layer << (DROPOUT_LAYER_SHIFT - 32).
    init[14] = step.t; init[15] = dims.u0 << (DROPOUT_LAYER_SHIFT - 32u);
    var s = init;
    for (var i = 0u; i < CHACHA_DOUBLE_ROUNDS; i = i + 1u) {
        quarter(&s, 0u, 4u, 8u, 12u); quarter(&s, 1u, 5u, 9u, 13u);
        quarter(&s, 2u, 6u, 10u, 14u); quarter(&s, 3u, 7u, 11u, 15u);
        quarter(&s, 0u, 5u, 10u, 15u); quarter(&s, 1u, 6u, 11u, 12u);
        quarter(&s, 2u, 7u, 8u, 13u); quarter(&s, 3u, 4u, 9u, 14u);
    }
    for (var w = 0u; w < CHACHA_BLOCK_WORDS; w = w + 1u) {
        let p = blk * CHACHA_BLOCK_WORDS + w;
        if (p < total) {
            let keep = (s[w] + init[w]) >= dims.u1;
            mask[p] = select(0u, 1u, keep);
            out[p] = select(0.0, f_st(f_mul(h[p], dims.f0)), keep);
        }
    }
}
