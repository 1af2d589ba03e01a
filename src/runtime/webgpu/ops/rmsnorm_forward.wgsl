// RMSNorm forward, one invocation per row (src/runtime/typescript/rmsnorm.ts):
//   r = 1 / sqrt(mean_j x_j² + eps),   out_j = w_j · (r · x_j),   rstd[row] = r (for the backward)
struct Params { rows: u32, channels: u32, eps: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let row = id.x + id.y * groups.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.channels;
  var sumSquares = 0.0;
  for (var j = 0u; j < params.channels; j++) {
    sumSquares += x[base + j] * x[base + j];
  }
  let r = 1.0 / sqrt(sumSquares / f32(params.channels) + params.eps);
  rstd[row] = r;
  for (var j = 0u; j < params.channels; j++) {
    out[base + j] = weight[j] * (r * x[base + j]);
  }
}
