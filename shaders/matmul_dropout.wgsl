// matmul_dropout.wgsl: EXPERIMENT (not used by a step): matmul_direct.wgsl
// with the bias, the activation and dropout.wgsl's inverted dropout fused
// into its epilogue. Each output's ChaCha word is word p % CHACHA_BLOCK_WORDS
// of block p / CHACHA_BLOCK_WORDS (p = r * n + j), as in dropout.wgsl; an
// invocation computes each block its outputs touch once (its last block
// kept).
// Bindings: 0 dims (rows, k, n, mode, off_b = w, off_c = b, u1 = layer,
// u2 = threshold, f0 = scale), 1 step, 2 key, 3 a, 4 params, 5 h, 6 dropped,
// 7 mask. Workgroup: MM_WX x MM_WY.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<uniform> key: array<vec4<u32>, 2>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> params: array<f32>;
@group(0) @binding(5) var<storage, read_write> h: array<f32>;
@group(0) @binding(6) var<storage, read_write> dropped: array<f32>;
@group(0) @binding(7) var<storage, read_write> mask: array<u32>;

fn epilogue(acc: f32, j: u32) -> f32 {
    let z = f_st(acc);
    let v = f_add(z, params[dims.off_c + j]);
    if (dims.mode == ACT_RELU) { return f_st(select(0.0, v, v > 0.0)); }
    if (dims.mode == ACT_TANH) { return f_st(f_tanh(v)); }
    return f_st(v);
}

fn quarter(s: ptr<function, array<u32, CHACHA_BLOCK_WORDS>>, a: u32, b: u32, c: u32, d: u32) {
    (*s)[a] = (*s)[a] + (*s)[b]; (*s)[d] = rotl((*s)[d] ^ (*s)[a], 16u);
    (*s)[c] = (*s)[c] + (*s)[d]; (*s)[b] = rotl((*s)[b] ^ (*s)[c], 12u);
    (*s)[a] = (*s)[a] + (*s)[b]; (*s)[d] = rotl((*s)[d] ^ (*s)[a], 8u);
    (*s)[c] = (*s)[c] + (*s)[d]; (*s)[b] = rotl((*s)[b] ^ (*s)[c], 7u);
}

fn block(blk: u32) -> array<u32, CHACHA_BLOCK_WORDS> {
    var init: array<u32, CHACHA_BLOCK_WORDS>;
    init[0] = 0x61707865u; init[1] = 0x3320646eu; init[2] = 0x79622d32u; init[3] = 0x6b206574u;
    init[4] = key[0].x; init[5] = key[0].y; init[6] = key[0].z; init[7] = key[0].w;
    init[8] = key[1].x; init[9] = key[1].y; init[10] = key[1].z; init[11] = key[1].w;
    init[12] = blk; init[13] = 0u;
    init[14] = step.t; init[15] = dims.u1 << (DROPOUT_LAYER_SHIFT - 32u);
    var s = init;
    for (var i = 0u; i < CHACHA_DOUBLE_ROUNDS; i = i + 1u) {
        quarter(&s, 0u, 4u, 8u, 12u); quarter(&s, 1u, 5u, 9u, 13u);
        quarter(&s, 2u, 6u, 10u, 14u); quarter(&s, 3u, 7u, 11u, 15u);
        quarter(&s, 0u, 5u, 10u, 15u); quarter(&s, 1u, 6u, 11u, 12u);
        quarter(&s, 2u, 7u, 8u, 13u); quarter(&s, 3u, 4u, 9u, 14u);
    }
    for (var w = 0u; w < CHACHA_BLOCK_WORDS; w = w + 1u) { s[w] = s[w] + init[w]; }
    return s;
}

fn mac4(acc: vec4<f32>, x: f32, y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(f_add(acc.x, f_mul(x, y.x)), f_add(acc.y, f_mul(x, y.y)), f_add(acc.z, f_mul(x, y.z)),
        f_add(acc.w, f_mul(x, y.w)));
}

@compute @workgroup_size(MM_WX, MM_WY)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let r = gid.y * 4u;
    let j = gid.x * 4u;
    if (r >= dims.rows || j >= dims.n) { return; }
    let last_r = dims.rows - 1u;
    let last_j = dims.n - 1u;
    let a0 = r * dims.k;
    let a1 = min(r + 1u, last_r) * dims.k;
    let a2 = min(r + 2u, last_r) * dims.k;
    let a3 = min(r + 3u, last_r) * dims.k;
    let w1 = min(j + 1u, last_j) - j;
    let w2 = min(j + 2u, last_j) - j;
    let w3 = min(j + 3u, last_j) - j;
    var c0 = vec4<f32>();
    var c1 = vec4<f32>();
    var c2 = vec4<f32>();
    var c3 = vec4<f32>();
    for (var k = 0u; k < dims.k; k = k + 1u) {
        let at = dims.off_b + k * dims.n + j;
        let w = vec4<f32>(params[at], params[at + w1], params[at + w2], params[at + w3]);
        c0 = mac4(c0, a[a0 + k], w);
        c1 = mac4(c1, a[a1 + k], w);
        c2 = mac4(c2, a[a2 + k], w);
        c3 = mac4(c3, a[a3 + k], w);
    }
    var acc = array<vec4<f32>, 4>(c0, c1, c2, c3);
    var have = 0xffffffffu;
    var words: array<u32, CHACHA_BLOCK_WORDS>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r + i >= dims.rows) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (j + q < dims.n) {
                let p = (r + i) * dims.n + j + q;
                let hv = epilogue(acc[i][q], j + q);
                h[p] = hv;
                let blk = p / CHACHA_BLOCK_WORDS;
                if (blk != have) { words = block(blk); have = blk; }
                let keep = words[p % CHACHA_BLOCK_WORDS] >= dims.u2;
                mask[p] = select(0u, 1u, keep);
                dropped[p] = select(0.0, f_st(f_mul(hv, dims.f0)), keep);
            }
        }
    }
}
