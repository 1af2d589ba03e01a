// Softmax cross-entropy forward, one invocation per row: probs = softmax(logits) (saved for the
// backward) and rowLoss = logsumexp(logits) − logits[target], 0 for a negative target. The host
// averages rowLoss over the rows the loss mask counts.
struct Params { rows: u32, vocab: u32 }

@group(0) @binding(0) var<storage, read_write> probs: array<f32>;
@group(0) @binding(1) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let row = id.x + id.y * groups.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.vocab;
  var largest = logits[base];
  for (var v = 1u; v < params.vocab; v++) {
    largest = max(largest, logits[base + v]);
  }
  var sum = 0.0;
  for (var v = 0u; v < params.vocab; v++) {
    sum += exp(logits[base + v] - largest);
  }
  for (var v = 0u; v < params.vocab; v++) {
    probs[base + v] = exp(logits[base + v] - largest) / sum;
  }
  let targetToken = targets[row];
  if (targetToken >= 0 && u32(targetToken) < params.vocab) {
    rowLoss[row] = largest + log(sum) - logits[base + u32(targetToken)];
  } else {
    rowLoss[row] = 0.0;
  }
}
