// Token embedding, a row gather: out[n, c] = table[tokens[n], c]. One invocation per output
// element; the host has checked every token against the vocabulary.
struct Params { count: u32, channels: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * 64u;
  if (index >= params.count * params.channels) { return; }
  let n = index / params.channels;
  let c = index % params.channels;
  out[index] = table[tokens[n] * params.channels + c];
}
