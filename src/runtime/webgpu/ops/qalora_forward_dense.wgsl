// A dense (unquantized, or merged) linear layer's forward with the same adapter epilogue as
// qalora_forward_quantized.wgsl: y[row, o] = Σ_i x[row, i] · W[i, o] + σ · Σ_j v[row, j] · B[j, o].
// W is input-major [K, N]. One invocation per output.
struct Params { rows: u32, inFeatures: u32, outFeatures: u32, rank: u32, scaling: f32 }

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let N = params.outFeatures;
  if (index >= params.rows * N) { return; }
  let row = index / N;
  let o = index % N;
  var acc = 0.0;
  for (var i = 0u; i < params.inFeatures; i++) {
    acc += x[row * params.inFeatures + i] * weight[i * N + o];
  }
  for (var j = 0u; j < params.rank; j++) {
    acc += params.scaling * v[row * params.rank + j] * b[j * N + o];
  }
  y[index] = acc;
}
