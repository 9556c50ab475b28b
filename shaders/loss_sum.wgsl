// loss_sum.wgsl: the batch loss, (sum of per-row losses, rows ascending, or
// descending when mode == 1: engine version 2) * f0 (f0 = 1 / batch), written
// to the loss ring at the step's slot.
// Spec: LOSS_ORDER. One thread: a sequential sum is the fixed order.
// Bindings: 0 dims (rows, mode, f0), 1 step (slot), 2 losses [rows], 3 loss_ring [K].
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> losses: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss_ring: array<f32>;

@compute @workgroup_size(1)
fn main() {
    f_init(dims.u3);
    var s = 0.0;
    for (var i = 0u; i < dims.rows; i = i + 1u) {
        s = f_add(s, losses[select(i, dims.rows - 1u - i, dims.mode == 1u)]);
    }
    loss_ring[step.slot] = f_mul(s, dims.f0);
}
