// The quantized QA-LoRA linear layer's dx, step 2, one invocation per four inputs
// dx[row, i…i+3] (input i in group k):
//   dx += Σ_o weighted[row, k, o] · q[i, o] − zeroTerm[row, k]      (dy · Ŵᵀ, from qalora_weighted_dy.wgsl)
//       + factor · keep[row, k] · Σ_j dv[row, j] · A[k, j]          (unpool(drop(dv · Aᵀ)), rank 0: none)
// Codes are a byte each, four inputs to a u32 ([N, ⌈K/4⌉] words, weight-layouts.ts), so one
// load gives the four codes of output o. Four inputs usually share a group; where they straddle
// two (g not a multiple of 4) each reads its own group's row of `weighted`.
//   v1 one input per invocation, dy · s · (q − z) per output        (K=172 N=64, 512 rows: 15.4 ms)
//   v2 this: scales and zeros folded in beforehand, four inputs      (see PERFORMANCE.md)
struct Params { rows: u32, inFeatures: u32, outFeatures: u32, groupSize: u32, rank: u32, factor: f32 }

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> weighted: array<f32>;
@group(0) @binding(2) var<storage, read> zeroTerm: array<f32>;
@group(0) @binding(3) var<storage, read> codes: array<u32>;
@group(0) @binding(4) var<storage, read> dv: array<f32>;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> keep: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

fn fourCodes(word: u32) -> vec4f {
  return vec4f((vec4u(word) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(0xffu));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let K = params.inFeatures;
  let N = params.outFeatures;
  let L = K / params.groupSize;
  let wordsPerRow = (K + 3u) / 4u;
  if (index >= params.rows * wordsPerRow) { return; }
  let row = index / wordsPerRow;
  let first = (index % wordsPerRow) * 4u;
  let last = min(first + 3u, K - 1u);
  // The group of each of the four inputs (past K: the last input's, never written).
  let k = vec4u(first, min(first + 1u, last), min(first + 2u, last), last) / params.groupSize;
  let base = (row * L + k) * N; // each input's row of weighted
  var acc = vec4f(0.0);
  if (k.x == k.w) {
    for (var o = 0u; o < N; o++) {
      acc += weighted[base.x + o] * fourCodes(codes[o * wordsPerRow + first / 4u]);
    }
  } else {
    for (var o = 0u; o < N; o++) {
      let w = vec4f(weighted[base.x + o], weighted[base.y + o], weighted[base.z + o], weighted[base.w + o]);
      acc += w * fourCodes(codes[o * wordsPerRow + first / 4u]);
    }
  }
  for (var j = 0u; j < 4u; j++) {
    let i = first + j;
    if (i >= K) { break; }
    var sum = acc[j] - zeroTerm[row * L + k[j]];
    if (params.rank > 0u) {
      var du = 0.0;
      for (var r = 0u; r < params.rank; r++) {
        du += dv[row * params.rank + r] * a[k[j] * params.rank + r];
      }
      sum += params.factor * keep[row * L + k[j]] * du;
    }
    dx[row * K + i] += sum;
  }
}
