// sgd.wgsl: SGD with momentum and weight decay over params[off_a .. off_a+n].
// Spec: OPTIMIZER_ORDER: g = grad + wd * w (mode 1: weights; mode 0: biases,
// no decay term at all), v = mu * v + g, w = w - lr * v.
// Bindings: 0 dims (n, mode, off_a, f0 = lr, f1 = mu, f2 = wd), 1 grads,
// 2 params, 3 velocity. Workgroup: WG, one thread per parameter.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let idx = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (idx >= dims.n) { return; }
    let i = dims.off_a + idx;
    var g = grads[i];
    if (dims.mode == 1u) { g = f_add(g, f_mul(dims.f2, params[i])); }
    let v = f_st(f_add(f_mul(dims.f1, velocity[i]), g));
    velocity[i] = v;
    params[i] = f_st(f_sub(params[i], f_mul(dims.f0, v)));
}
