// The output projection logits[row, v] = Σ_c x[row, c] · classifier[v, c]; one invocation per logit.
struct Params { rows: u32, channels: u32, vocab: u32 }

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> classifier: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.rows * params.vocab) { return; }
  let row = index / params.vocab;
  let v = index % params.vocab;
  var sum = 0.0;
  for (var c = 0u; c < params.channels; c++) {
    sum += x[row * params.channels + c] * classifier[v * params.channels + c];
  }
  logits[index] = sum;
}
