// matmul_grad.wgsl: weight gradient dw[k][j] = sum_r a[r][k] * d[r][j].
// Spec: GRAD_ORDER: one running sum per output from +0.0, batch rows r
// ascending (engine version 1, mode 0) or descending (version 2, mode 1).
// Bindings: 0 dims (rows, k, n, mode, off_b = offset of dw in grads),
// 1 a [rows*k], 2 d [rows*n], 3 grads. Workgroup: TILE x TILE, one thread
// per (k, j).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let j = gid.x;
    let kk = gid.y;
    if (kk >= dims.k || j >= dims.n) { return; }
    var acc = 0.0;
    for (var i = 0u; i < dims.rows; i = i + 1u) {
        let r = select(i, dims.rows - 1u - i, dims.mode == 1u);
        acc = f_add(acc, f_mul(a[r * dims.k + kk], d[r * dims.n + j]));
    }
    grads[dims.off_b + kk * dims.n + j] = f_st(acc);
}
