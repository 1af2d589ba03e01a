// QA-LoRA adapter, forward step 1: the pooled input u[row, k] = factor · Σ_{i∈k} x[row, i]
// (factor 1/g for mean pooling, 1 for sum), saved for the backward before any dropout.
// One invocation per (row, group).
struct Params { rows: u32, inFeatures: u32, groupSize: u32, factor: f32 }

@group(0) @binding(0) var<storage, read_write> u: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let L = params.inFeatures / params.groupSize;
  if (index >= params.rows * L) { return; }
  let row = index / L;
  let first = row * params.inFeatures + (index % L) * params.groupSize;
  var sum = 0.0;
  for (var i = 0u; i < params.groupSize; i++) {
    sum += x[first + i];
  }
  u[index] = params.factor * sum;
}
