// activation_backward.wgsl: error through dropout and the activation, from
// the layer's output h (before dropout): g' = keep ? g * f0 : +0.0 (when
// u0 == 1, dropout on), then ReLU: h > 0 ? g' : +0.0 (mode ACT_RELU) or tanh:
// g' * (1 - h * h) (mode ACT_TANH). As src/model.rs::loss_and_grads.
// Bindings: 0 dims (rows, n, mode, u0, f0 = scale), 1 g [rows*n], 2 h,
// 3 mask, 4 out [rows*n]. Workgroup: WG, one thread per element.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let i = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (i >= dims.rows * dims.n) { return; }
    var v = g[i];
    if (dims.u0 == 1u) { v = select(0.0, f_st(f_mul(v, dims.f0)), mask[i] != 0u); }
    let hv = h[i];
    if (dims.mode == ACT_RELU) {
        out[i] = f_st(select(0.0, v, hv > 0.0));
    } else {
        out[i] = f_st(f_mul(v, f_st(f_sub(1.0, f_mul(hv, hv)))));
    }
}
