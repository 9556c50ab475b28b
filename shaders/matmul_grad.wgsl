// matmul_grad.wgsl: weight gradient dw[k][j] = sum_r a[r][k] * d[r][j].
// Spec: GRAD_ORDER: one running sum per output from +0.0, batch rows r
// ascending (engine version 1, mode 0) or descending (version 2, mode 1),
// `f_add(acc, f_mul(a, d))`. Register-blocked like matmul.wgsl: each
// invocation holds a 4 x 4 block of outputs (k = lid.y*4.., j = lid.x*4..);
// the workgroup stages MM_BK batch rows of `a` and `d` at a time, taken in
// the summation order, in workgroup memory (two barriers per tile). Every
// output is still its own running sum over the rows in that order; the last
// tile stops at the last row (no padding term is added).
// Bindings: 0 dims (rows, k, n, mode, off_b = offset of dw in grads),
// 1 a [rows*k], 2 d [rows*n], 3 grads. Workgroup: MM_WX x MM_WY, grid:
// (ceil(n / (4*MM_WX)), ceil(k / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

const BM: u32 = 4u * MM_WY;
const NT: u32 = MM_WX * MM_WY;
// With i the position in the summation order and r(i) its batch row:
// ta[kr][ii] = a[r(i0 + ii)][k0 + kr]; td[ii][c] = d[r(i0 + ii)][j0 + 4c .. +4].
var<workgroup> ta: array<array<f32, MM_BK>, BM>;
var<workgroup> td: array<array<vec4<f32>, MM_WX>, MM_BK>;

// acc[c] + x * y[c], per lane, as the spec writes it.
fn mac4(acc: vec4<f32>, x: f32, y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(f_add(acc.x, f_mul(x, y.x)), f_add(acc.y, f_mul(x, y.y)), f_add(acc.z, f_mul(x, y.z)),
        f_add(acc.w, f_mul(x, y.w)));
}

@compute @workgroup_size(MM_WX, MM_WY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    f_init(dims.u3);
    let k0 = wid.y * BM;
    let j0 = wid.x * 4u * MM_WX;
    let lk = lid.y * 4u;
    var c0 = vec4<f32>();
    var c1 = vec4<f32>();
    var c2 = vec4<f32>();
    var c3 = vec4<f32>();
    let tiles = (dims.rows + MM_BK - 1u) / MM_BK;
    for (var t = 0u; t < tiles; t = t + 1u) {
        let i0 = t * MM_BK;
        // Consecutive invocations read consecutive k of one row of a.
        for (var e = li; e < BM * MM_BK; e = e + NT) {
            let ii = e / BM;
            let kr = e % BM;
            let i = i0 + ii;
            let k = k0 + kr;
            var v = 0.0;
            if (i < dims.rows && k < dims.k) {
                let r = select(i, dims.rows - 1u - i, dims.mode == 1u);
                v = a[r * dims.k + k];
            }
            ta[kr][ii] = v;
        }
        for (var e = li; e < MM_BK * MM_WX; e = e + NT) {
            let ii = e / MM_WX;
            let c = e % MM_WX;
            let i = i0 + ii;
            let j = j0 + 4u * c;
            var v = vec4<f32>();
            if (i < dims.rows) {
                let r = select(i, dims.rows - 1u - i, dims.mode == 1u);
                let at = r * dims.n + j;
                if (j + 3u < dims.n) {
                    v = vec4<f32>(d[at], d[at + 1u], d[at + 2u], d[at + 3u]);
                } else {
                    if (j < dims.n) { v.x = d[at]; }
                    if (j + 1u < dims.n) { v.y = d[at + 1u]; }
                    if (j + 2u < dims.n) { v.z = d[at + 2u]; }
                }
            }
            td[ii][c] = v;
        }
        workgroupBarrier();
        let count = min(MM_BK, dims.rows - i0);
        for (var ii = 0u; ii < count; ii = ii + 1u) {
            let dv = td[ii][lid.x];
            c0 = mac4(c0, ta[lk][ii], dv);
            c1 = mac4(c1, ta[lk + 1u][ii], dv);
            c2 = mac4(c2, ta[lk + 2u][ii], dv);
            c3 = mac4(c3, ta[lk + 3u][ii], dv);
        }
        workgroupBarrier();
    }
    let j = j0 + 4u * lid.x;
    var acc = array<vec4<f32>, 4>(c0, c1, c2, c3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let k = k0 + lk + i;
        if (k >= dims.k) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (j + q < dims.n) { grads[dims.off_b + k * dims.n + j + q] = f_st(acc[i][q]); }
        }
    }
}
