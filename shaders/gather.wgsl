// gather.wgsl: copy the rows of a batch (or of the validation set) out of the
// data set that lives on the GPU.
// Bindings: 0 dims (rows, k = dim, off_a = first index), 1 step (batch_offset
// added to off_a when mode == 1), 2 data_x [n*dim], 3 data_y [n],
// 4 rows [index list], 5 x_out [rows*dim], 6 y_out [rows].
// Workgroup: WG threads, one per (row, feature). Integer work only: exact.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> data_x: array<f32>;
@group(0) @binding(3) var<storage, read> data_y: array<u32>;
@group(0) @binding(4) var<storage, read> rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> x_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> y_out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    f_init(dims.u3);
    let i = gid.x + gid.y * WG * MAX_GROUPS_X;
    let dim = dims.k;
    if (i >= dims.rows * dim) { return; }
    let r = i / dim;
    let c = i % dim;
    var first = dims.off_a;
    if (dims.mode == 1u) { first = first + step.batch_offset; }
    let ex = rows[first + r];
    x_out[i] = f_st(data_x[ex * dim + c]);
    if (c == 0u) { y_out[r] = data_y[ex]; }
}
