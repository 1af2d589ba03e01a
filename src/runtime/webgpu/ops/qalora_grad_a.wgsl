// QA-LoRA adapter, ∂loss/∂A: gradA[k, j] += Σ_row drop(u)[row, k] · dv[row, j], one invocation
// per entry of A (L × r).
struct Params { rows: u32, groups: u32, rank: u32 }

@group(0) @binding(0) var<storage, read_write> gradA: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> keep: array<f32>;
@group(0) @binding(3) var<storage, read> dv: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.groups * params.rank) { return; }
  let k = index / params.rank;
  let j = index % params.rank;
  var sum = 0.0;
  for (var row = 0u; row < params.rows; row++) {
    let pooled = row * params.groups + k;
    sum += u[pooled] * keep[pooled] * dv[row * params.rank + j];
  }
  gradA[index] += sum;
}
