// The quantized QA-LoRA linear layer's forward, one invocation per output y[row, o]:
//   y = Σ_k s[k,o] · (Σ_{i∈k} x_i · q[i,o] − z[k,o] · Σ_{i∈k} x_i)  +  σ · Σ_j v[row, j] · B[j, o]
// i.e. x·Ŵ with Ŵ = s·(q − z) dequantized group by group on the fly (never stored), plus the
// adapter's epilogue (rank 0: no adapter). Codes are one byte each, four to a u32; scales and
// zeros are [L, N] (zeros may be fractional after a merge).
struct Params { rows: u32, inFeatures: u32, outFeatures: u32, groupSize: u32, rank: u32, scaling: f32 }

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> zeros: array<f32>;
@group(0) @binding(5) var<storage, read> v: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

fn code(i: u32) -> f32 {
  return f32((codes[i / 4u] >> (8u * (i % 4u))) & 0xffu);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let N = params.outFeatures;
  if (index >= params.rows * N) { return; }
  let row = index / N;
  let o = index % N;
  let xRow = row * params.inFeatures;
  var acc = 0.0;
  for (var first = 0u; first < params.inFeatures; first += params.groupSize) {
    var dotCodes = 0.0;
    var groupSum = 0.0;
    for (var i = first; i < first + params.groupSize; i++) {
      dotCodes += x[xRow + i] * code(i * N + o);
      groupSum += x[xRow + i];
    }
    let sz = (first / params.groupSize) * N + o;
    acc += scales[sz] * (dotCodes - zeros[sz] * groupSum);
  }
  for (var j = 0u; j < params.rank; j++) {
    acc += params.scaling * v[row * params.rank + j] * b[j * N + o];
  }
  y[index] = acc;
}
