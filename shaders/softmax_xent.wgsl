// softmax_xent.wgsl: softmax cross-entropy per row and its gradient.
// Spec: SOFTMAX_ORDER: m = first max; e = exp(z - m); s = sum over classes
// ascending; loss = log(s) - (z[y] - m); grad = (e / s - [c == y]) * f0
// (f0 = 1 / batch). mode 1 writes the gradient, mode 0 only the losses.
// Bindings: 0 dims (rows, n = classes, mode, f0), 1 logits, 2 labels,
// 3 losses [rows], 4 grad [rows*n]. Workgroup: WG, one thread per row.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let r = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (r >= dims.rows) { return; }
    let n = dims.n;
    let base = r * n;
    var m = logits[base];
    for (var c = 1u; c < n; c = c + 1u) {
        let z = logits[base + c];
        if (z > m) { m = z; }
    }
    var s = 0.0;
    for (var c = 0u; c < n; c = c + 1u) {
        s = f_add(s, f_st(f_exp(f_sub(logits[base + c], m))));
    }
    let y = labels[r];
    losses[r] = f_st(f_sub(f_ln(s), f_sub(logits[base + y], m)));
    if (dims.mode == 1u) {
        for (var c = 0u; c < n; c = c + 1u) {
            let p = f_st(f_div(f_st(f_exp(f_sub(logits[base + c], m))), s));
            grad[base + c] = f_st(f_mul(select(p, f_sub(p, 1.0), c == y), dims.f0));
        }
    }
}
