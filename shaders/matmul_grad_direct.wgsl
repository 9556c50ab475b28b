// matmul_grad_direct.wgsl: weight gradient dw[k][j] = sum_r a[r][k] * d[r][j],
// as matmul_grad.wgsl but with no workgroup memory and no barrier (the
// matrix kernels' tiling with MM_BK = 0): operands are read straight from
// the storage buffers. Spec: GRAD_ORDER: one running sum per output from
// +0.0, batch rows r ascending (mode 0) or descending (mode 1),
// `f_add(acc, f_mul(a, d))`. Each invocation holds a 4 x 4 block of outputs
// (k.., j..); rows and columns past the edge are read clamped and never
// written.
// Bindings: 0 dims (rows, k, n, mode, off_b = offset of dw in grads),
// 1 a [rows*k], 2 d [rows*n], 3 grads. Workgroup: MM_WX x MM_WY, grid:
// (ceil(n / (4*MM_WX)), ceil(k / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

// acc[c] + x * y[c], per lane, as the spec writes it.
fn mac4(acc: vec4<f32>, x: f32, y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(f_add(acc.x, f_mul(x, y.x)), f_add(acc.y, f_mul(x, y.y)), f_add(acc.z, f_mul(x, y.z)),
        f_add(acc.w, f_mul(x, y.w)));
}

@compute @workgroup_size(MM_WX, MM_WY)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let k = gid.y * 4u;
    let j = gid.x * 4u;
    if (k >= dims.k || j >= dims.n) { return; }
    let last_k = dims.k - 1u;
    let last_j = dims.n - 1u;
    let k1 = min(k + 1u, last_k);
    let k2 = min(k + 2u, last_k);
    let k3 = min(k + 3u, last_k);
    let j1 = min(j + 1u, last_j);
    let j2 = min(j + 2u, last_j);
    let j3 = min(j + 3u, last_j);
    var c0 = vec4<f32>();
    var c1 = vec4<f32>();
    var c2 = vec4<f32>();
    var c3 = vec4<f32>();
    for (var i = 0u; i < dims.rows; i = i + 1u) {
        let r = select(i, dims.rows - 1u - i, dims.mode == 1u);
        let ar = r * dims.k;
        let dr = r * dims.n;
        let dv = vec4<f32>(d[dr + j], d[dr + j1], d[dr + j2], d[dr + j3]);
        c0 = mac4(c0, a[ar + k], dv);
        c1 = mac4(c1, a[ar + k1], dv);
        c2 = mac4(c2, a[ar + k2], dv);
        c3 = mac4(c3, a[ar + k3], dv);
    }
    var acc = array<vec4<f32>, 4>(c0, c1, c2, c3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (k + i >= dims.k) { break; }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (j + q < dims.n) { grads[dims.off_b + (k + i) * dims.n + j + q] = f_st(acc[i][q]); }
        }
    }
}
