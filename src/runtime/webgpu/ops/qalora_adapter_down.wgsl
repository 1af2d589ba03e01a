// QA-LoRA adapter, forward step 2: v[row, j] = Σ_k drop(u)[row, k] · A[k, j], where
// drop(u) = u · keep and keep is 1/(1−p) for a kept entry, 0 for a dropped one, 1 without
// dropout. One invocation per (row, j); v is saved for the backward.
struct Params { rows: u32, groups: u32, rank: u32 }

@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> keep: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.rows * params.rank) { return; }
  let row = index / params.rank;
  let j = index % params.rank;
  var sum = 0.0;
  for (var k = 0u; k < params.groups; k++) {
    let pooled = row * params.groups + k;
    sum += u[pooled] * keep[pooled] * a[k * params.rank + j];
  }
  v[index] = sum;
}
