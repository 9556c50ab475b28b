// bias_activation.wgsl: h[r][j] = act(z[r][j] + b[j]) in place.
// Spec: MATMUL_ORDER (bias added after the sum); activations as in
// src/model.rs: mode ACT_NONE (logits), ACT_RELU (z > 0 ? z : +0.0), ACT_TANH.
// Bindings: 0 dims (rows, n, mode, off_b = offset of b in params), 1 params,
// 2 z (in/out). Workgroup: WG, one thread per element.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let i = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (i >= dims.rows * dims.n) { return; }
    let v = f_add(z[i], params[dims.off_b + i % dims.n]);
    if (dims.mode == ACT_RELU) {
        z[i] = f_st(select(0.0, v, v > 0.0));
    } else if (dims.mode == ACT_TANH) {
        z[i] = f_st(f_tanh(v));
    } else {
        z[i] = f_st(v);
    }
}
