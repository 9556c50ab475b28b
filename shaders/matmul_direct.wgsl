// matmul_direct.wgsl: forward product z[r][j] = sum_k a[r][k] * w[k][j], as
// matmul.wgsl but with no workgroup memory and no barrier: each invocation
// reads its operands straight from the storage buffers (the matrix kernels'
// tiling with MM_BK = 0, chosen where barriers cost more than the re-reads,
// as on SwiftShader). Spec: MATMUL_ORDER: one running sum per output from
// +0.0, k ascending, `f_add(acc, f_mul(a, w))`. Each invocation holds a
// 4 x 4 block of outputs; rows and columns past the edge are read clamped
// (valid memory) and never written, so no sum gets an extra term.
// Epilogue: with u0 = 1 the bias (off_c = its offset in params) and the
// activation (mode) of bias_activation.wgsl, fused (see `epilogue`).
// Bindings: 0 dims (rows, k, n, off_b = offset of w in params), 1 a [rows*k],
// 2 params (w), 3 out [rows*n]. Workgroup: MM_WX x MM_WY, grid:
// (ceil(n / (4*MM_WX)), ceil(rows / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// The value stored for output column `j` with running sum `acc`: with
// dims.u0 = 1 the bias and activation of bias_activation.wgsl fused in
// (the same operations on the same values: z = f_st(acc), then
// f_st(act(f_add(z, b[j]))), b at dims.off_c, activation dims.mode);
// with dims.u0 = 0 the plain product.
fn epilogue(acc: f32, j: u32) -> f32 {
    let z = f_st(acc);
    if (dims.u0 == 0u) { return z; }
    let v = f_add(z, params[dims.off_c + j]);
    if (dims.mode == ACT_RELU) { return f_st(select(0.0, v, v > 0.0)); }
    if (dims.mode == ACT_TANH) { return f_st(f_tanh(v)); }
    return f_st(v);
}

// acc[c] + x * y[c], per lane, as the spec writes it.
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
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r + i >= dims.rows) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (j + q < dims.n) { out[(r + i) * dims.n + j + q] = epilogue(acc[i][q], j + q); }
        }
    }
}
