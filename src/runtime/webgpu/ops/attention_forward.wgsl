// Causal grouped-query attention forward (src/runtime/typescript/attention.ts), one invocation per
// (batch b, head h, query position t). q is [B, T, H·hs], k and v [B, T, KVH·hs]; head h reads
// kv head ⌊h / (H/KVH)⌋. The row probs[b, h, t, :] first holds the scores, then the softmax
// (0 past t), which the backward reads.
struct Params { batch: u32, seqLen: u32, heads: u32, kvHeads: u32, headSize: u32, scale: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let T = params.seqLen;
  if (index >= params.batch * params.heads * T) { return; }
  let t = index % T;
  let h = (index / T) % params.heads;
  let b = index / (T * params.heads);
  let hs = params.headSize;
  let qWidth = params.heads * hs;
  let kvWidth = params.kvHeads * hs;
  let kvHead = (h / (params.heads / params.kvHeads)) * hs;
  let qRow = (b * T + t) * qWidth + h * hs;
  let pRow = index * T; // ((b·H + h)·T + t)·T

  var largest = -3.4e38; // below any finite score
  for (var s = 0u; s <= t; s++) {
    let kRow = (b * T + s) * kvWidth + kvHead;
    var dot = 0.0;
    for (var i = 0u; i < hs; i++) {
      dot += q[qRow + i] * k[kRow + i];
    }
    probs[pRow + s] = dot * params.scale;
    largest = max(largest, dot * params.scale);
  }
  var sum = 0.0;
  for (var s = 0u; s <= t; s++) {
    let e = exp(probs[pRow + s] - largest);
    probs[pRow + s] = e;
    sum += e;
  }
  for (var s = 0u; s < T; s++) {
    probs[pRow + s] = select(0.0, probs[pRow + s] / sum, s <= t);
  }
  for (var i = 0u; i < hs; i++) {
    var acc = 0.0;
    for (var s = 0u; s <= t; s++) {
      acc += probs[pRow + s] * v[(b * T + s) * kvWidth + kvHead + i];
    }
    out[qRow + i] = acc;
  }
}
