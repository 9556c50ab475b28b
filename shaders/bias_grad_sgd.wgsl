// bias_grad_sgd.wgsl: the bias gradient of bias_grad.wgsl and the SGD update
// of sgd.wgsl (mode 0, biases: no decay term at all) fused: each invocation
// sums db[j] as bias_grad.wgsl does and updates that bias and its velocity
// instead of storing db for sgd.wgsl.
// Spec: GRAD_ORDER: db[j] = sum_r d[r][j] from +0.0, rows ascending (engine
// version 1, mode 0) or descending (version 2, mode 1), the gradient
// `f_st(acc)`; then OPTIMIZER_ORDER for biases: v = mu * v + g (stored),
// w = w - lr * v (stored).
// Bindings: 0 dims (rows, n, mode, off_b = offset of b in params and
// velocity, f0 = lr, f1 = mu), 1 d [rows*n], 2 params, 3 velocity.
// Workgroup: WG, one thread per j.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

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
    let g = f_st(acc);
    let at = dims.off_b + j;
    let v = f_st(f_add(f_mul(dims.f1, velocity[at]), g));
    velocity[at] = v;
    params[at] = f_st(f_sub(params[at], f_mul(dims.f0, v)));
}
