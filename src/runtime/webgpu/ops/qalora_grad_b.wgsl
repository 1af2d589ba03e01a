// QA-LoRA adapter, ∂loss/∂B: gradB[j, o] += σ · Σ_row v[row, j] · dy[row, o], one invocation
// per entry of B (r × N).
struct Params { rows: u32, outFeatures: u32, rank: u32, scaling: f32 }

@group(0) @binding(0) var<storage, read_write> gradB: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let N = params.outFeatures;
  if (index >= params.rank * N) { return; }
  let j = index / N;
  let o = index % N;
  var sum = 0.0;
  for (var row = 0u; row < params.rows; row++) {
    sum += v[row * params.rank + j] * dy[row * N + o];
  }
  gradB[index] += params.scaling * sum;
}
