// matmul_grad_sgd.wgsl: the weight gradient of matmul_grad_direct.wgsl and
// the SGD update of sgd.wgsl (mode 1, weights) fused: each invocation sums
// its 4 x 4 block of dw as matmul_grad_direct.wgsl does, then updates those
// weights and velocities in place instead of storing dw for sgd.wgsl. No
// other invocation of the dispatch reads these weights; the layer's
// back-propagation (which reads the weights before this step's update) runs
// before this dispatch.
// Spec: GRAD_ORDER: one running sum per output from +0.0, batch rows r
// ascending (mode 0) or descending (mode 1), `f_add(acc, f_mul(a, d))`, the
// gradient `f_st(acc)`; then OPTIMIZER_ORDER for weights:
// g = grad + wd * w, v = mu * v + g (stored), w = w - lr * v (stored), the
// same operations on the same values as sgd.wgsl. No workgroup memory, no
// barrier (the matrix kernels' tiling with MM_BK = 0).
// Bindings: 0 dims (rows, k, n, mode, off_b = offset of w in params and
// velocity, f0 = lr, f1 = mu, f2 = wd), 1 a [rows*k], 2 d [rows*n],
// 3 params, 4 velocity. Workgroup: MM_WX x MM_WY, grid:
// (ceil(n / (4*MM_WX)), ceil(k / (4*MM_WY))).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;

// acc[c] + x * y[c], per lane, as the spec writes it.
fn mac4(acc: vec4<f32>, x: f32, y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(f_add(acc.x, f_mul(x, y.x)), f_add(acc.y, f_mul(x, y.y)), f_add(acc.z, f_mul(x, y.z)),
        f_add(acc.w, f_mul(x, y.w)));
}

// sgd.wgsl's update (mode 1) of parameter i with the gradient `grad`.
fn update(i: u32, grad: f32) {
    let g = f_add(grad, f_mul(dims.f2, params[i]));
    let v = f_st(f_add(f_mul(dims.f1, velocity[i]), g));
    velocity[i] = v;
    params[i] = f_st(f_sub(params[i], f_mul(dims.f0, v)));
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
            if (j + q < dims.n) { update(dims.off_b + (k + i) * dims.n + j + q, f_st(acc[i][q])); }
        }
    }
}
