// Softmax cross-entropy backward, one invocation per logit:
//   dLogits[row, v] += rowScale[row] · (probs[row, v] − [v = target[row]])
// rowScale is dLoss / #counted for a counted row and 0 for any other (the host decides).
struct Params { rows: u32, vocab: u32 }

@group(0) @binding(0) var<storage, read_write> dLogits: array<f32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> rowScale: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.rows * params.vocab) { return; }
  let row = index / params.vocab;
  let scale = rowScale[row];
  if (scale == 0.0) { return; }
  let v = i32(index % params.vocab);
  let onehot = select(0.0, 1.0, v == targets[row]);
  dLogits[index] += scale * (probs[index] - onehot);
}
