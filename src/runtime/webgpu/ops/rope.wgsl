// Rotary position embedding in place, forward (direction 1) or backward (direction −1, the
// transposed rotation), one invocation per pair (2p, 2p+1) of a row of [batch·seqLen, width]:
//   (x0, x1) ← (x0·cos − x1·s, x0·s + x1·cos),   s = direction · sin
// The token at index t of its sequence has position t; cos/sin are [positions, headSize/2].
struct Params { rows: u32, seqLen: u32, width: u32, headSize: u32, direction: f32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cosTable: array<f32>;
@group(0) @binding(2) var<storage, read> sinTable: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  let pairsPerRow = params.width / 2u;
  if (index >= params.rows * pairsPerRow) { return; }
  let row = index / pairsPerRow;
  let i = 2u * (index % pairsPerRow);
  let position = row % params.seqLen;
  let table = position * (params.headSize / 2u) + (i % params.headSize) / 2u;
  let c = cosTable[table];
  let s = params.direction * sinTable[table];
  let at = row * params.width + i;
  let x0 = x[at];
  let x1 = x[at + 1u];
  x[at] = x0 * c - x1 * s;
  x[at + 1u] = x0 * s + x1 * c;
}
