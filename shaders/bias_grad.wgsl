// bias_grad.wgsl: bias gradient db[j] = sum_r d[r][j], rows ascending
// (engine version 1, mode 0) or descending (version 2, mode 1).
// Spec: GRAD_ORDER. Bindings: 0 dims (rows, n, mode, off_b = offset of db in
// grads), 1 d [rows*n], 2 grads. Workgroup: WG, one thread per j.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let j = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (j >= dims.n) { return; }
    var acc = 0.0;
    for (var i = 0u; i < dims.rows; i = i + 1u) {
        let r = select(i, dims.rows - 1u - i, dims.mode == 1u);
        acc = f_add(acc, d[r * dims.n + j]);
    }
    grads[dims.off_b + j] = f_st(acc);
}
