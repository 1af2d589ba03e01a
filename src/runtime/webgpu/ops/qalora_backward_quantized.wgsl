// The quantized QA-LoRA linear layer's dx, one invocation per dx[row, i] (i in group k):
//   dx += Σ_o dy[row, o] · s[k,o] · (q[i,o] − z[k,o])                (dy · Ŵᵀ, dequantized on the fly)
//       + factor · keep[row, k] · Σ_j dv[row, j] · A[k, j]           (unpool(drop(dv · Aᵀ)))
// dv comes from qalora_adapter_dv.wgsl; rank 0 means no adapter.
struct Params { rows: u32, inFeatures: u32, outFeatures: u32, groupSize: u32, rank: u32, factor: f32 }

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> zeros: array<f32>;
@group(0) @binding(5) var<storage, read> dv: array<f32>;
@group(0) @binding(6) var<storage, read> a: array<f32>;
@group(0) @binding(7) var<storage, read> keep: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

fn code(i: u32) -> f32 {
  return f32((codes[i / 4u] >> (8u * (i % 4u))) & 0xffu);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let K = params.inFeatures;
  let N = params.outFeatures;
  if (index >= params.rows * K) { return; }
  let row = index / K;
  let i = index % K;
  let k = i / params.groupSize;
  var acc = 0.0;
  for (var o = 0u; o < N; o++) {
    let sz = k * N + o;
    acc += dy[row * N + o] * scales[sz] * (code(i * N + o) - zeros[sz]);
  }
  if (params.rank > 0u) {
    var du = 0.0;
    for (var j = 0u; j < params.rank; j++) {
      du += dv[row * params.rank + j] * a[k * params.rank + j];
    }
    acc += params.factor * keep[row * (K / params.groupSize) + k] * du;
  }
  dx[index] += acc;
}
