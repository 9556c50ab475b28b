// matmul_backprop.wgsl: back-propagated error g[r][k] = sum_j d[r][j] * w[k][j].
// Spec: BACKPROP_ORDER: one running sum per output from +0.0, j ascending,
// `f_add(acc, f_mul(d, w))`. Register-blocked like matmul.wgsl: each
// invocation holds a 4 x 4 block of outputs (rows lid.y*4.., columns k =
// lid.x*4..); the workgroup stages MM_BK-wide j tiles of `d` and of `w`
// (transposed on the way in) in workgroup memory, two barriers per tile.
// Every output is still its own running sum over j ascending; the last tile
// stops at n (no padding term is added).
// Bindings: 0 dims (rows, k, n, off_b = offset of w in params), 1 d [rows*n],
// 2 params, 3 g [rows*k]. Workgroup: MM_WX x MM_WY, grid:
// (ceil(k / (4*MM_WX)), ceil(rows / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;

const BM: u32 = 4u * MM_WY;
const NT: u32 = MM_WX * MM_WY;
// td[row][jj] = d[r0 + row][j0 + jj]; tw[jj][c] = w[k0 + 4c .. +4][j0 + jj].
var<workgroup> td: array<array<f32, MM_BK>, BM>;
var<workgroup> tw: array<array<vec4<f32>, MM_WX>, MM_BK>;

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
    let k0 = wid.x * 4u * MM_WX;
    let lr = lid.y * 4u;
    var c0 = vec4<f32>();
    var c1 = vec4<f32>();
    var c2 = vec4<f32>();
    var c3 = vec4<f32>();
    let tiles = (dims.n + MM_BK - 1u) / MM_BK;
    for (var t = 0u; t < tiles; t = t + 1u) {
        let j0 = t * MM_BK;
        for (var e = li; e < BM * MM_BK; e = e + NT) {
            let row = e / MM_BK;
            let jj = e % MM_BK;
            let r = r0 + row;
            let j = j0 + jj;
            var v = 0.0;
            if (r < dims.rows && j < dims.n) { v = d[r * dims.n + j]; }
            td[row][jj] = v;
        }
        // Consecutive invocations read consecutive j of one row of w.
        for (var e = li; e < MM_BK * MM_WX; e = e + NT) {
            let c = e / MM_BK;
            let jj = e % MM_BK;
            let j = j0 + jj;
            let k = k0 + 4u * c;
            var v = vec4<f32>();
            if (j < dims.n) {
                let at = dims.off_b + k * dims.n + j;
                if (k < dims.k) { v.x = params[at]; }
                if (k + 1u < dims.k) { v.y = params[at + dims.n]; }
                if (k + 2u < dims.k) { v.z = params[at + 2u * dims.n]; }
                if (k + 3u < dims.k) { v.w = params[at + 3u * dims.n]; }
            }
            tw[jj][c] = v;
        }
        workgroupBarrier();
        let count = min(MM_BK, dims.n - j0);
        for (var jj = 0u; jj < count; jj = jj + 1u) {
            let w = tw[jj][lid.x];
            c0 = mac4(c0, td[lr][jj], w);
            c1 = mac4(c1, td[lr + 1u][jj], w);
            c2 = mac4(c2, td[lr + 2u][jj], w);
            c3 = mac4(c3, td[lr + 3u][jj], w);
        }
        workgroupBarrier();
    }
    let k = k0 + 4u * lid.x;
    var acc = array<vec4<f32>, 4>(c0, c1, c2, c3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = r0 + lr + i;
        if (r >= dims.rows) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (k + q < dims.k) { g[r * dims.k + k + q] = f_st(acc[i][q]); }
        }
    }
}
