// Accumulation into a gradient: out[i] += source[offset + i] for i < count, one invocation per
// element. The compiled kernels overwrite what they compute (dx, and dA then dB packed in one
// buffer); the training ops add into the caller's gradients, so this adds the slice in.
struct Params { count: u32, offset: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = id.x + id.y * groups.x * 64u;
  if (i >= params.count) { return; }
  out[i] += source[params.offset + i];
}
