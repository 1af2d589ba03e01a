// Causal GQA attention backward, second pass: one invocation per element (b, key position s,
// kv channel c) of dk and dv, summing over the query heads h that read kv head ⌊c / hs⌋ and the
// query positions t ≥ s (the ds of attention_backward_query.wgsl, the p of the forward):
//   dv[b, s, c] += Σ_h Σ_t p[b, h, t, s] · dOut[b, t, h·hs + i]
//   dk[b, s, c] += Σ_h Σ_t ds[b, h, t, s] · q[b, t, h·hs + i]          (i = c mod hs)
struct Params { batch: u32, seqLen: u32, heads: u32, kvHeads: u32, headSize: u32 }

@group(0) @binding(0) var<storage, read_write> dk: array<f32>;
@group(0) @binding(1) var<storage, read_write> dv: array<f32>;
@group(0) @binding(2) var<storage, read> dScores: array<f32>;
@group(0) @binding(3) var<storage, read> dOut: array<f32>;
@group(0) @binding(4) var<storage, read> q: array<f32>;
@group(0) @binding(5) var<storage, read> probs: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let T = params.seqLen;
  let hs = params.headSize;
  let kvWidth = params.kvHeads * hs;
  if (index >= params.batch * T * kvWidth) { return; }
  let c = index % kvWidth;
  let s = (index / kvWidth) % T;
  let b = index / (kvWidth * T);
  let kvHead = c / hs;
  let i = c % hs;
  let group = params.heads / params.kvHeads;
  let qWidth = params.heads * hs;

  var dkAcc = 0.0;
  var dvAcc = 0.0;
  for (var h = kvHead * group; h < (kvHead + 1u) * group; h++) {
    for (var t = s; t < T; t++) {
      let p = ((b * params.heads + h) * T + t) * T + s;
      let qRow = (b * T + t) * qWidth + h * hs;
      dvAcc += probs[p] * dOut[qRow + i];
      dkAcc += dScores[p] * q[qRow + i];
    }
  }
  dk[index] += dkAcc;
  dv[index] += dvAcc;
}
