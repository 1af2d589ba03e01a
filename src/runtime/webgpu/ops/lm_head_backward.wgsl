// The output projection's backward w.r.t. its input (the classifier is frozen):
//   dx[row, c] += Σ_v dLogits[row, v] · classifier[v, c]; one invocation per element of dx.
struct Params { rows: u32, channels: u32, vocab: u32 }

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dLogits: array<f32>;
@group(0) @binding(2) var<storage, read> classifier: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.rows * params.channels) { return; }
  let row = index / params.channels;
  let c = index % params.channels;
  var sum = 0.0;
  for (var v = 0u; v < params.vocab; v++) {
    sum += dLogits[row * params.vocab + v] * classifier[v * params.channels + c];
  }
  dx[index] += sum;
}
