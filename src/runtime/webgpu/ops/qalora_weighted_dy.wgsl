// The quantized linear layer's dx, step 1, one invocation per (row, group k): dy scaled by the
// group's scales, and the zero-point term of the mirror identity
//   dx_i = Σ_o dy_o · s[k,o] · (q[i,o] − z[k,o]) = Σ_o weighted[k,o] · q[i,o] − zeroTerm[k]
//   weighted[row, k, o] = dy[row, o] · s[k, o],   zeroTerm[row, k] = Σ_o weighted[row, k, o] · z[k, o]
// so that qalora_backward_quantized.wgsl reads one float and one code word per output.
struct Params { rows: u32, groups: u32, outFeatures: u32 }

@group(0) @binding(0) var<storage, read_write> weighted: array<f32>;
@group(0) @binding(1) var<storage, read_write> zeroTerm: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> zeros: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u; // row · L + k
  if (index >= params.rows * params.groups) { return; }
  let row = index / params.groups;
  let k = index % params.groups;
  let N = params.outFeatures;
  var sum = 0.0;
  for (var o = 0u; o < N; o++) {
    let w = dy[row * N + o] * scales[k * N + o];
    weighted[index * N + o] = w;
    sum += w * zeros[k * N + o];
  }
  zeroTerm[index] = sum;
}
