// QA-LoRA adapter, backward step 1: dv[row, j] = σ · Σ_o dy[row, o] · B[j, o], the gradient
// w.r.t. the adapter's inner activation, which dx, dA read. One invocation per (row, j).
struct Params { rows: u32, outFeatures: u32, rank: u32, scaling: f32 }

@group(0) @binding(0) var<storage, read_write> dv: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.rows * params.rank) { return; }
  let row = index / params.rank;
  let j = index % params.rank;
  let N = params.outFeatures;
  var sum = 0.0;
  for (var o = 0u; o < N; o++) {
    sum += dy[row * N + o] * b[j * N + o];
  }
  dv[index] = params.scaling * sum;
}
