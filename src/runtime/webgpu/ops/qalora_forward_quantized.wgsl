// The quantized QA-LoRA linear layer's forward, one invocation per tile of 4 rows × 4 outputs:
//   y = Σ_k s[k,o] · (Σ_{i∈k} x_i · q[i,o] − z[k,o] · Σ_{i∈k} x_i)  +  σ · Σ_j v[row, j] · B[j, o]
// i.e. x·Ŵ with Ŵ = s·(q − z) dequantized group by group on the fly (never stored), plus the
// adapter's epilogue (rank 0: no adapter). Codes are a byte each, four outputs to a u32
// ([K, ⌈N/4⌉] words, weight-layouts.ts: one load gives the four codes of input i), and scales
// and zeros are [L, 4·⌈N/4⌉], padded alike (zeros may be fractional after a merge). Rows past
// the last are read as the last row and never written.
//   v1 one output per invocation, a byte load per multiply-add      (K=172 N=64, 512 rows: 9.5 ms on lavapipe)
//   v2 four outputs per invocation, one word load per input          (2.8 ms)
//   v3 four rows too: 16 multiply-adds per code word and 4 x loads   (see PERFORMANCE.md)
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
  let K = params.inFeatures;
  let N = params.outFeatures;
  let wordsPerRow = (N + 3u) / 4u;
  if (index >= ((params.rows + 3u) / 4u) * wordsPerRow) { return; }
  let firstRow = (index / wordsPerRow) * 4u;
  let word = index % wordsPerRow;
  let lastRow = params.rows - 1u;
  let xRows = vec4u(firstRow, min(firstRow + 1u, lastRow), min(firstRow + 2u, lastRow), min(firstRow + 3u, lastRow)) * K;
  // Column r of acc holds the four outputs of row firstRow + r.
  var acc = mat4x4f();
  for (var first = 0u; first < K; first += params.groupSize) {
    var dotCodes = mat4x4f();
    var groupSums = vec4f(0.0);
    for (var i = first; i < first + params.groupSize; i++) {
      let q = fourCodes(codes[i * wordsPerRow + word]);
      let xi = vec4f(x[xRows.x + i], x[xRows.y + i], x[xRows.z + i], x[xRows.w + i]);
      dotCodes += mat4x4f(xi.x * q, xi.y * q, xi.z * q, xi.w * q);
      groupSums += xi;
    }
    let sz = ((first / params.groupSize) * wordsPerRow + word) * 4u;
    let s = vec4f(scales[sz], scales[sz + 1u], scales[sz + 2u], scales[sz + 3u]);
    let z = vec4f(zeros[sz], zeros[sz + 1u], zeros[sz + 2u], zeros[sz + 3u]);
    acc += mat4x4f(s * (dotCodes[0] - z * groupSums.x), s * (dotCodes[1] - z * groupSums.y),
                   s * (dotCodes[2] - z * groupSums.z), s * (dotCodes[3] - z * groupSums.w));
  }
  for (var r = 0u; r < 4u; r++) {
    let row = firstRow + r;
    if (row >= params.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let o = word * 4u + j;
      if (o >= N) { break; }
      var sum = acc[r][j];
      for (var a = 0u; a < params.rank; a++) {
        sum += params.scaling * v[row * params.rank + a] * b[a * N + o];
      }
      y[row * N + o] = sum;
    }
  }
}
