// exact_probe.wgsl: the start-up probe of the `exact` level: one thread per
// known-answer case, answers compared with the CPU's by src/exact/probe.rs
// (spec: the PROBE table there; docs/EXACT.md "The probe").
// Bindings: 0 dims (rows = number of cases, u3 = the fence's run-time zero),
// 1 cases [4 words each: op, a, b, c], 2 answers [one word per case].
// Workgroup: WG. Includes lib_exact.wgsl.
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> cases: array<u32>;
@group(0) @binding(2) var<storage, read_write> answers: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    ex_init(dims.u3);
    let i = gid.x + gid.y * WG * MAX_GROUPS_X;
    if (i >= dims.rows) { return; }
    let op = cases[4u * i];
    let ua = cases[4u * i + 1u];
    let a = bitcast<f32>(ua);
    let b = bitcast<f32>(cases[4u * i + 2u]);
    let c = bitcast<f32>(cases[4u * i + 3u]);
    var out = 0xffffffffu;
    switch op {
        case 0u: { out = bitcast<u32>(ex_add(a, b)); }
        case 1u: { out = bitcast<u32>(ex_sub(a, b)); }
        case 2u: { out = bitcast<u32>(ex_mul(a, b)); }
        case 3u: { out = bitcast<u32>(ex_add(ex_mul(a, b), c)); }
        case 4u: { out = bitcast<u32>(a * b + c); }
        case 5u: {
            let s = ex_add(a, b);
            let bb = ex_sub(s, a);
            out = bitcast<u32>(ex_add(ex_sub(a, ex_sub(s, bb)), ex_sub(b, bb)));
        }
        case 6u: {
            let s = a + b;
            let bb = s - a;
            out = bitcast<u32>((a - (s - bb)) + (b - bb));
        }
        case 7u: { out = bitcast<u32>(a * b); }
        case 8u: { out = bitcast<u32>(i32(a)); }
        case 9u: { out = u32(a); }
        case 10u: { out = bitcast<u32>(f32(bitcast<i32>(ua))); }
        case 11u: { out = bitcast<u32>(f32(ua)); }
        case 12u: { out = bitcast<u32>(ex_exp(a)); }
        case 13u: { out = bitcast<u32>(ex_ln(a)); }
        case 14u: { out = bitcast<u32>(ex_tanh(a)); }
        case 15u: { out = bitcast<u32>(ex_div(a, b)); }
        case 16u: { out = bitcast<u32>(ex_flush(a)); }
        case 17u: { out = bitcast<u32>(exp(a)); }
        default: {}
    }
    answers[i] = out;
}
