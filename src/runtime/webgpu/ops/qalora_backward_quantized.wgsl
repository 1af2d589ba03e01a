// The quantized QA-LoRA linear layer's dx, step 2, one invocation per tile of 4 rows × 4 inputs
// (input i in group k):
//   dx += Σ_o weighted[row, k, o] · q[i, o] − zeroTerm[row, k]      (dy · Ŵᵀ, from qalora_weighted_dy.wgsl)
//       + factor · keep[row, k] · Σ_j dv[row, j] · A[k, j]          (unpool(drop(dv · Aᵀ)), rank 0: none)
// Codes are a byte each, four inputs to a u32 ([N, ⌈K/4⌉] words, weight-layouts.ts), so one
// load gives the four codes of output o. Four inputs share a group or straddle two (g not a
// multiple of 4): each takes its own group's row of `weighted` (g < 4: up to four groups, a
// slower loop). Rows past the last are read as the last row and never written.
//   v1 one input per invocation, dy · s · (q − z) per output          (K=172 N=64, 512 rows: 15.4 ms on lavapipe)
//   v2 scales and zeros folded into dy beforehand, four inputs         (4.4 ms)
//   v3 four rows too: 16 multiply-adds per code word                   (see PERFORMANCE.md)
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
  if (index >= ((params.rows + 3u) / 4u) * wordsPerRow) { return; }
  let firstRow = (index / wordsPerRow) * 4u;
  let word = index % wordsPerRow;
  let lastRow = params.rows - 1u;
  let rows = vec4u(firstRow, min(firstRow + 1u, lastRow), min(firstRow + 2u, lastRow), min(firstRow + 3u, lastRow));
  let firstInput = word * 4u;
  let lastInput = min(firstInput + 3u, K - 1u);
  // The group of each of the four inputs (past K: the last input's, never written).
  let k = vec4u(firstInput, min(firstInput + 1u, lastInput), min(firstInput + 2u, lastInput), lastInput) / params.groupSize;
  // Column r of acc holds the four inputs of row rows[r].
  var acc = mat4x4f();
  if (params.groupSize >= 4u) {
    // The four inputs span at most two groups, k.x and k.w: read both rows of weighted (the
    // same one, mostly) and let each input take its own, without a branch per invocation.
    let inFirstGroup = k == vec4u(k.x);
    let baseFirst = (rows * L + k.x) * N;
    let baseLast = (rows * L + k.w) * N;
    for (var o = 0u; o < N; o++) {
      let q = fourCodes(codes[o * wordsPerRow + word]);
      for (var r = 0u; r < 4u; r++) {
        acc[r] += select(vec4f(weighted[baseLast[r] + o]), vec4f(weighted[baseFirst[r] + o]), inFirstGroup) * q;
      }
    }
  } else {
    for (var r = 0u; r < 4u; r++) {
      let base = (rows[r] * L + k) * N;
      for (var o = 0u; o < N; o++) {
        let w = vec4f(weighted[base.x + o], weighted[base.y + o], weighted[base.z + o], weighted[base.w + o]);
        acc[r] += w * fourCodes(codes[o * wordsPerRow + word]);
      }
    }
  }
  for (var r = 0u; r < 4u; r++) {
    let row = firstRow + r;
    if (row >= params.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let i = firstInput + j;
      if (i >= K) { break; }
      let pooled = row * L + k[j];
      var sum = acc[r][j] - zeroTerm[pooled];
      if (params.rank > 0u) {
        var du = 0.0;
        for (var c = 0u; c < params.rank; c++) {
          du += dv[row * params.rank + c] * a[k[j] * params.rank + c];
        }
        sum += params.factor * keep[pooled] * du;
      }
      dx[row * K + i] += sum;
    }
  }
}
