// softmax_xent_loss.wgsl: softmax_xent.wgsl (training, mode 1) and
// loss_sum.wgsl fused into one dispatch of one workgroup. The rows are taken
// in the loss sum's order, WG at a time: invocation q computes the row at
// position i0 + q of that order as softmax_xent.wgsl does (the same
// operations) and puts its loss, as stored, in workgroup memory; after a
// barrier invocation 0 adds those WG losses in order to its one running
// sum, as loss_sum.wgsl does. (Invocation 0 reading the losses back from
// the storage buffer instead, after a storage barrier or after writing them
// all itself, took lavapipe 3 to 40 ms a dispatch on 8 to 32 rows in
// training, for no reason found; this form takes it about 0.04 ms.)
// Spec: SOFTMAX_ORDER per row: m = first max; e = exp(z - m); s = sum over
// classes ascending; loss = log(s) - (z[y] - m); grad = (e / s - [c == y]) *
// f0 (f0 = 1 / batch). LOSS_ORDER: the batch loss = (sum of the per-row
// losses from +0.0, rows ascending, or descending when u0 == 1: engine
// version 2) * f0, one running sum in one invocation, written to the loss
// ring at the step's slot.
// Bindings: 0 dims (rows, n = classes, f0, u0 = row order), 1 step (slot),
// 2 logits, 3 labels, 4 losses [rows], 5 grad [rows*n], 6 loss_ring [K].
// Workgroup: WG, grid (1, 1); two barriers per WG rows.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss_ring: array<f32>;

// Row r's loss and gradient, as softmax_xent.wgsl computes them; returns
// the loss as stored.
fn softmax_row(r: u32) -> f32 {
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
    let loss = f_st(f_sub(f_ln(s), f_sub(logits[base + y], m)));
    losses[r] = loss;
    for (var c = 0u; c < n; c = c + 1u) {
        let p = f_st(f_div(f_st(f_exp(f_sub(logits[base + c], m))), s));
        grad[base + c] = f_st(f_mul(select(p, f_sub(p, 1.0), c == y), dims.f0));
    }
    return loss;
}

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
    f_init(dims.u3);
    var s = 0.0;
    // Chunks of WG rows in the sum's order: position i of the order is
    // computed by invocation i % WG, its loss passed through `part`.
    for (var i0 = 0u; i0 < dims.rows; i0 = i0 + WG) {
        let i = i0 + li;
        if (i < dims.rows) {
            part[li] = softmax_row(select(i, dims.rows - 1u - i, dims.u0 == 1u));
        }
        workgroupBarrier();
        if (li == 0u) {
            let count = min(WG, dims.rows - i0);
            for (var q = 0u; q < count; q = q + 1u) {
                s = f_add(s, part[q]);
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        loss_ring[step.slot] = f_mul(s, dims.f0);
    }
}
