// val_metrics.wgsl: validation error count (rows whose first maximal logit is
// not the label) and loss sum (rows ascending), into the validation ring.
// Spec: LOSS_ORDER (the GPU sums the validation loss in f32; the count is an
// integer and exact). One thread.
// Bindings: 0 dims (rows, n = classes), 1 step (val_slot), 2 logits,
// 3 labels, 4 losses, 5 val_ring [2 words per slot: count, loss-sum bits].
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read> losses: array<f32>;
@group(0) @binding(5) var<storage, read_write> val_ring: array<u32>;

@compute @workgroup_size(1)
fn main() {
    f_init(dims.u3);
    var wrong = 0u;
    var s = 0.0;
    for (var r = 0u; r < dims.rows; r = r + 1u) {
        let base = r * dims.n;
        var best = 0u;
        for (var c = 1u; c < dims.n; c = c + 1u) {
            if (logits[base + c] > logits[base + best]) { best = c; }
        }
        if (best != labels[r]) { wrong = wrong + 1u; }
        s = f_add(s, losses[r]);
    }
    val_ring[2u * step.val_slot] = wrong;
    val_ring[2u * step.val_slot + 1u] = bitcast<u32>(s);
}
