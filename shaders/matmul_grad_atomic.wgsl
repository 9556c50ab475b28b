// matmul_grad_atomic.wgsl: the NON-deterministic weight gradient, for the
// "GPU reduction order: free" switch. The batch is cut into chunks of u0
// rows; each thread sums its chunk, then adds the partial sum into dw with a
// compare-exchange loop on the f32 bits (float atomics), so the order of the
// additions follows the GPU scheduler. Same maths as matmul_grad.wgsl,
// different rounding from run to run where the scheduler varies.
// Bindings: 0 dims (rows, k, n, off_b, u0 = rows per chunk), 1 a, 2 d,
// 3 grads (as atomic<u32>; zeroed before). Workgroup: WG, one thread per
// (chunk, k, j).
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let i = gid.x + gid.y * WG * MAX_GROUPS_X;
    let outputs = dims.k * dims.n;
    let chunks = (dims.rows + dims.u0 - 1u) / dims.u0;
    if (i >= outputs * chunks) { return; }
    // Chunk-major, so neighbouring threads add into the same outputs and race.
    let c = i / outputs;
    let o = i % outputs;
    let kk = o / dims.n;
    let j = o % dims.n;
    var part = 0.0;
    let end = min(dims.rows, (c + 1u) * dims.u0);
    for (var r = c * dims.u0; r < end; r = r + 1u) {
        part = part + a[r * dims.k + kk] * d[r * dims.n + j];
    }
    let at = dims.off_b + o;
    var old = atomicLoad(&grads[at]);
    loop {
        let new_bits = bitcast<u32>(bitcast<f32>(old) + part);
        let r = atomicCompareExchangeWeak(&grads[at], old, new_bits);
        if (r.exchanged) { break; }
        old = r.old_value;
    }
}
