// exact_eval.wgsl: evaluates one function of lib_exact.wgsl on a buffer of
// inputs, for the CPU/GPU parity test (tests/exact_probe.rs; CPU twin:
// src/exact/mod.rs, `Func`). mode: 0 exp, 1 ln, 2 tanh, 3 div, 4 add, 5 sub,
// 6 mul, 7 addg, 8 mulg, 9 tiny. Bindings: 0 dims (rows = n, mode, u3 = the fence's run-time zero),
// 1 a [n] (f32 bits), 2 b [n] (second operand; unused by unary functions),
// 3 out [n] (f32 bits). Workgroup: WG, one thread per element.
// Includes lib_exact.wgsl.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> xa: array<u32>;
@group(0) @binding(2) var<storage, read> xb: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    ex_init(dims.u3);
    let i = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (i >= dims.rows) { return; }
    let a = bitcast<f32>(xa[i]);
    let b = bitcast<f32>(xb[i]);
    var v = 0.0;
    switch dims.mode {
        case 0u: { v = ex_exp(a); }
        case 1u: { v = ex_ln(a); }
        case 2u: { v = ex_tanh(a); }
        case 3u: { v = ex_div(a, b); }
        case 4u: { v = ex_add(a, b); }
        case 5u: { v = ex_sub(a, b); }
        case 6u: { v = ex_mul(a, b); }
        case 7u: { v = ex_addg(a, b); }
        case 8u: { v = ex_mulg(a, b); }
        default: { v = ex_tiny(a); }
    }
    out[i] = bitcast<u32>(v);
}
