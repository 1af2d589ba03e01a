// A dense linear layer's dx with the adapter's term, one invocation per dx[row, i]:
//   dx += Σ_o dy[row, o] · W[i, o] + factor · keep[row, k] · Σ_j dv[row, j] · A[k, j],  k = ⌊i / g⌋
// (g the adapter's group size; rank 0 means no adapter).
struct Params { rows: u32, inFeatures: u32, outFeatures: u32, groupSize: u32, rank: u32, factor: f32 }

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> dv: array<f32>;
@group(0) @binding(4) var<storage, read> a: array<f32>;
@group(0) @binding(5) var<storage, read> keep: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let K = params.inFeatures;
  let N = params.outFeatures;
  if (index >= params.rows * K) { return; }
  let row = index / K;
  let i = index % K;
  var acc = 0.0;
  for (var o = 0u; o < N; o++) {
    acc += dy[row * N + o] * weight[i * N + o];
  }
  if (params.rank > 0u) {
    let k = i / params.groupSize;
    var du = 0.0;
    for (var j = 0u; j < params.rank; j++) {
      du += dv[row * params.rank + j] * a[k * params.rank + j];
    }
    acc += params.factor * keep[row * (K / params.groupSize) + k] * du;
  }
  dx[index] += acc;
}
