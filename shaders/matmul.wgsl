// matmul.wgsl: forward product z[r][j] = sum_k a[r][k] * w[k][j].
// Spec: MATMUL_ORDER: one running sum per output starting at +0.0, k
// ascending, `f_add(acc, f_mul(a, w))`. Register-blocked: each invocation
// holds a 4 x 4 block of outputs (rows lid.y*4.., columns lid.x*4..) in four
// vec4 accumulators; the workgroup's (4*MM_WY) x (4*MM_WX) block stages
// MM_BK-wide k tiles of `a` and `w` in workgroup memory (two barriers per
// tile). Every output is still its own running sum over k ascending: the
// blocking changes which invocation computes it, never its order (no
// split-K, no padding term is ever added: the last tile stops at k).
// Epilogue: with u0 = 1 the bias (off_c = its offset in params) and the
// activation (mode) of bias_activation.wgsl, fused (see `epilogue`).
// Bindings: 0 dims (rows, k, n, off_b = offset of w in params), 1 a [rows*k],
// 2 params (w), 3 out [rows*n]. Workgroup: MM_WX x MM_WY (prepended
// constants), grid: (ceil(n / (4*MM_WX)), ceil(rows / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const BM: u32 = 4u * MM_WY;
const NT: u32 = MM_WX * MM_WY;
// ta[row][kk] = a[r0 + row][k0 + kk]; tw[kk][c] = w[k0 + kk][j0 + 4c .. +4].
var<workgroup> ta: array<array<f32, MM_BK>, BM>;
var<workgroup> tw: array<array<vec4<f32>, MM_WX>, MM_BK>;

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
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    f_init(dims.u3);
    let r0 = wid.y * BM;
    let j0 = wid.x * 4u * MM_WX;
    let lr = lid.y * 4u;
    var c0 = vec4<f32>();
    var c1 = vec4<f32>();
    var c2 = vec4<f32>();
    var c3 = vec4<f32>();
    let tiles = (dims.k + MM_BK - 1u) / MM_BK;
    for (var t = 0u; t < tiles; t = t + 1u) {
        let k0 = t * MM_BK;
        for (var e = li; e < BM * MM_BK; e = e + NT) {
            let row = e / MM_BK;
            let kk = e % MM_BK;
            let r = r0 + row;
            let k = k0 + kk;
            var v = 0.0;
            if (r < dims.rows && k < dims.k) { v = a[r * dims.k + k]; }
            ta[row][kk] = v;
        }
        for (var e = li; e < MM_BK * MM_WX; e = e + NT) {
            let kk = e / MM_WX;
            let c = e % MM_WX;
            let k = k0 + kk;
            let j = j0 + 4u * c;
            var v = vec4<f32>();
            if (k < dims.k) {
                let at = dims.off_b + k * dims.n + j;
                if (j + 3u < dims.n) {
                    v = vec4<f32>(params[at], params[at + 1u], params[at + 2u], params[at + 3u]);
                } else {
                    if (j < dims.n) { v.x = params[at]; }
                    if (j + 1u < dims.n) { v.y = params[at + 1u]; }
                    if (j + 2u < dims.n) { v.z = params[at + 2u]; }
                }
            }
            tw[kk][c] = v;
        }
        workgroupBarrier();
        let count = min(MM_BK, dims.k - k0);
        for (var kk = 0u; kk < count; kk = kk + 1u) {
            let w = tw[kk][lid.x];
            c0 = mac4(c0, ta[lr][kk], w);
            c1 = mac4(c1, ta[lr + 1u][kk], w);
            c2 = mac4(c2, ta[lr + 2u][kk], w);
            c3 = mac4(c3, ta[lr + 3u][kk], w);
        }
        workgroupBarrier();
    }
    let j = j0 + 4u * lid.x;
    var acc = array<vec4<f32>, 4>(c0, c1, c2, c3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = r0 + lr + i;
        if (r >= dims.rows) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (j + q < dims.n) { out[r * dims.n + j + q] = epilogue(acc[i][q], j + q); }
        }
    }
}
