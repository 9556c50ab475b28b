// matmul_backprop_direct.wgsl: back-propagated error g[r][k] = sum_j d[r][j]
// * w[k][j], as matmul_backprop.wgsl but with no workgroup memory and no
// barrier (the matrix kernels' tiling with MM_BK = 0): operands are read
// straight from the storage buffers. Spec: BACKPROP_ORDER: one running sum
// per output from +0.0, j ascending, `f_add(acc, f_mul(d, w))`. Each
// invocation holds a 4 x 4 block of outputs (rows r.., columns k..); rows
// and columns past the edge are read clamped and never written.
// Bindings: 0 dims (rows, k, n, off_b = offset of w in params), 1 d [rows*n],
// 2 params, 3 g [rows*k]. Workgroup: MM_WX x MM_WY, grid:
// (ceil(k / (4*MM_WX)), ceil(rows / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;

// acc[c] + x * y[c], per lane, as the spec writes it.
fn mac4(acc: vec4<f32>, x: f32, y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(f_add(acc.x, f_mul(x, y.x)), f_add(acc.y, f_mul(x, y.y)), f_add(acc.z, f_mul(x, y.z)),
        f_add(acc.w, f_mul(x, y.w)));
}

@compute @workgroup_size(MM_WX, MM_WY)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let r = gid.y * 4u;
    let k = gid.x * 4u;
    if (r >= dims.rows || k >= dims.k) { return; }
    let last_r = dims.rows - 1u;
    let last_k = dims.k - 1u;
    let d0 = r * dims.n;
    let d1 = min(r + 1u, last_r) * dims.n;
    let d2 = min(r + 2u, last_r) * dims.n;
    let d3 = min(r + 3u, last_r) * dims.n;
    let w0 = dims.off_b + k * dims.n;
    let w1 = dims.off_b + min(k + 1u, last_k) * dims.n;
    let w2 = dims.off_b + min(k + 2u, last_k) * dims.n;
    let w3 = dims.off_b + min(k + 3u, last_k) * dims.n;
    var c0 = vec4<f32>();
    var c1 = vec4<f32>();
    var c2 = vec4<f32>();
    var c3 = vec4<f32>();
    for (var j = 0u; j < dims.n; j = j + 1u) {
        let w = vec4<f32>(params[w0 + j], params[w1 + j], params[w2 + j], params[w3 + j]);
        c0 = mac4(c0, d[d0 + j], w);
        c1 = mac4(c1, d[d1 + j], w);
        c2 = mac4(c2, d[d2 + j], w);
        c3 = mac4(c3, d[d3 + j], w);
    }
    var acc = array<vec4<f32>, 4>(c0, c1, c2, c3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r + i >= dims.rows) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (k + q < dims.k) { g[(r + i) * dims.k + k + q] = f_st(acc[i][q]); }
        }
    }
}
