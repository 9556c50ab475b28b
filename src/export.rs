//! Weights out to other tools: safetensors, the format PyTorch, JAX and
//! Hugging Face read. Layout: an 8-byte little-endian header length, a JSON
//! header, then the tensors' bytes. Tensors, for every layer `i` from the
//! input: `layer{i}.weight`, F32, shape `[fan_in, fan_out]` row-major (so
//! `x @ W` as the engine computes it; PyTorch's `nn.Linear` stores the
//! transpose), and `layer{i}.bias`, F32, shape `[fan_out]`. The header's
//! `__metadata__` holds `format: "reprolab"`, the step and the activation.

use crate::model::Network;

/// The safetensors bytes of `params` (laid out as `net` says) after `step` steps.
pub fn safetensors(net: &Network, params: &[f32], step: usize) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::with_capacity(4 * params.len());
    for (i, l) in net.layers.iter().enumerate() {
        for (name, range, shape) in [
            (format!("layer{i}.weight"), l.w..l.b, vec![l.fan_in, l.fan_out]),
            (format!("layer{i}.bias"), l.b..l.b + l.fan_out, vec![l.fan_out]),
        ] {
            let begin = data.len();
            for v in &params[range] {
                data.extend_from_slice(&v.to_le_bytes());
            }
            header.insert(
                name,
                serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()] }),
            );
        }
    }
    header.insert(
        "__metadata__".into(),
        serde_json::json!({
            "format": "reprolab",
            "step": step.to_string(),
            "activation": net.activation.name(),
        }),
    );
    let mut text = serde_json::to_string(&header).expect("a header serialises").into_bytes();
    // Pad the header with spaces so the data starts 8-byte aligned.
    while (8 + text.len()) % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&data);
    out
}
