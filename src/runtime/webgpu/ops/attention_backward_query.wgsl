// Causal GQA attention backward, first pass: one invocation per (b, h, query position t).
//   dp[s] = dOut_t · v_s,   ds[s] = p[s] · (dp[s] − Σ_s' p[s']·dp[s']) / sqrt(hs)   (s ≤ t)
//   dq_t += Σ_s ds[s] · k_s
// ds is left in dScores [B, H, T, T] (0 past t) for attention_backward_key.wgsl, which sums the
// key and value gradients over the queries without two invocations writing one element.
struct Params { batch: u32, seqLen: u32, heads: u32, kvHeads: u32, headSize: u32, scale: f32 }

@group(0) @binding(0) var<storage, read_write> dq: array<f32>;
@group(0) @binding(1) var<storage, read_write> dScores: array<f32>;
@group(0) @binding(2) var<storage, read> dOut: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> probs: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

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
  let pRow = index * T;

  var weighted = 0.0;
  for (var s = 0u; s <= t; s++) {
    let vRow = (b * T + s) * kvWidth + kvHead;
    var dp = 0.0;
    for (var i = 0u; i < hs; i++) {
      dp += dOut[qRow + i] * v[vRow + i];
    }
    dScores[pRow + s] = dp;
    weighted += probs[pRow + s] * dp;
  }
  for (var s = 0u; s < T; s++) {
    dScores[pRow + s] = select(0.0, probs[pRow + s] * (dScores[pRow + s] - weighted) * params.scale, s <= t);
  }
  for (var i = 0u; i < hs; i++) {
    var acc = 0.0;
    for (var s = 0u; s <= t; s++) {
      acc += dScores[pRow + s] * k[(b * T + s) * kvWidth + kvHead + i];
    }
    dq[qRow + i] += acc;
  }
}
