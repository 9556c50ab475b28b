// matmul_backprop.wgsl: back-propagated error g[r][k] = sum_j d[r][j] * w[k][j].
// Spec: BACKPROP_ORDER: one running sum from +0.0, j ascending.
// Bindings: 0 dims (rows, k, n, off_b = offset of w in params), 1 d [rows*n],
// 2 params, 3 g [rows*k]. Workgroup: TILE x TILE, one thread per (r, k).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let kk = gid.x;
    let r = gid.y;
    if (r >= dims.rows || kk >= dims.k) { return; }
    var acc = 0.0;
    for (var j = 0u; j < dims.n; j = j + 1u) {
        acc = f_add(acc, f_mul(d[r * dims.n + j], params[dims.off_b + kk * dims.n + j]));
    }
    g[r * dims.k + kk] = f_st(acc);
}
