// matmul.wgsl: forward product z[r][j] = sum_k a[r][k] * w[k][j].
// Spec: MATMUL_ORDER: one running sum per output starting at +0.0, k
// ascending; the TILE x TILE tiling only stages operands in workgroup memory,
// it never changes the order (no split-K).
// Bindings: 0 dims (rows, k, n, off_b = offset of w in params), 1 a [rows*k],
// 2 params (w), 3 out [rows*n]. Workgroup: TILE x TILE, one thread per output.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_w: array<array<f32, TILE>, TILE>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    f_init(dims.u3);
    let j = gid.x;
    let r = gid.y;
    var acc = 0.0;
    let tiles = (dims.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t = t + 1u) {
        let ka = t * TILE + lid.x;
        let kw = t * TILE + lid.y;
        var va = 0.0;
        if (r < dims.rows && ka < dims.k) { va = a[r * dims.k + ka]; }
        var vw = 0.0;
        if (j < dims.n && kw < dims.k) { vw = params[dims.off_b + kw * dims.n + j]; }
        tile_a[lid.y][lid.x] = va;
        tile_w[lid.y][lid.x] = vw;
        workgroupBarrier();
        let count = min(TILE, dims.k - t * TILE);
        for (var kk = 0u; kk < count; kk = kk + 1u) {
            acc = f_add(acc, f_mul(tile_a[lid.y][kk], tile_w[kk][lid.x]));
        }
        workgroupBarrier();
    }
    if (r < dims.rows && j < dims.n) { out[r * dims.n + j] = f_st(acc); }
}
