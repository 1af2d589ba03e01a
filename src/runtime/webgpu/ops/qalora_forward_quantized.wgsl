// The quantized QA-LoRA linear layer's forward, one invocation per four outputs y[row, o…o+3]:
//   y = Σ_k s[k,o] · (Σ_{i∈k} x_i · q[i,o] − z[k,o] · Σ_{i∈k} x_i)  +  σ · Σ_j v[row, j] · B[j, o]
// i.e. x·Ŵ with Ŵ = s·(q − z) dequantized group by group on the fly (never stored), plus the
// adapter's epilogue (rank 0: no adapter). Codes are a byte each, four outputs to a u32
// ([K, ⌈N/4⌉] words, weight-layouts.ts: one load gives the four codes of input i), and scales
// and zeros are [L, 4·⌈N/4⌉], padded alike (zeros may be fractional after a merge).
//   v1 one output per invocation, a byte load per multiply-add     (K=172 N=64, 512 rows: 9.5 ms)
//   v2 four outputs per invocation, one word load per input        (same: see PERFORMANCE.md)
struct Params { rows: u32, inFeatures: u32, outFeatures: u32, groupSize: u32, rank: u32, scaling: f32 }

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> zeros: array<f32>;
@group(0) @binding(5) var<storage, read> v: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

fn fourCodes(word: u32) -> vec4f {
  return vec4f((vec4u(word) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(0xffu));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let N = params.outFeatures;
  let wordsPerRow = (N + 3u) / 4u;
  if (index >= params.rows * wordsPerRow) { return; }
  let row = index / wordsPerRow;
  let word = index % wordsPerRow;
  let xRow = row * params.inFeatures;
  var acc = vec4f(0.0);
  for (var first = 0u; first < params.inFeatures; first += params.groupSize) {
    var dotCodes = vec4f(0.0);
    var groupSum = 0.0;
    for (var i = first; i < first + params.groupSize; i++) {
      let xi = x[xRow + i];
      dotCodes += xi * fourCodes(codes[i * wordsPerRow + word]);
      groupSum += xi;
    }
    let sz = ((first / params.groupSize) * wordsPerRow + word) * 4u;
    let groupScales = vec4f(scales[sz], scales[sz + 1u], scales[sz + 2u], scales[sz + 3u]);
    let groupZeros = vec4f(zeros[sz], zeros[sz + 1u], zeros[sz + 2u], zeros[sz + 3u]);
    acc += groupScales * (dotCodes - groupZeros * groupSum);
  }
  for (var j = 0u; j < 4u; j++) {
    let o = word * 4u + j;
    if (o >= N) { break; }
    var sum = acc[j];
    for (var r = 0u; r < params.rank; r++) {
      sum += params.scaling * v[row * params.rank + r] * b[r * N + o];
    }
    y[row * N + o] = sum;
  }
}
