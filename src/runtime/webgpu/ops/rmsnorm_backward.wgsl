// RMSNorm backward w.r.t. x (the weight is frozen), one invocation per row:
//   dx_j += r · w_j · dy_j − x_j · r³ / C · Σ_k dy_k · w_k · x_k
struct Params { rows: u32, channels: u32 }

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let row = id.x + id.y * groups.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.channels;
  let r = rstd[row];
  var dot = 0.0;
  for (var j = 0u; j < params.channels; j++) {
    dot += dy[base + j] * weight[j] * x[base + j];
  }
  let correction = r * r * r * dot / f32(params.channels);
  for (var j = 0u; j < params.channels; j++) {
    dx[base + j] += r * weight[j] * dy[base + j] - correction * x[base + j];
  }
}
