// SwiGLU backward, one invocation per element, σ = sigmoid(gate):
//   dGate += dOut · up · σ · (1 + g · (1 − σ)),   dUp += dOut · g · σ
struct Params { count: u32 }

@group(0) @binding(0) var<storage, read_write> dGate: array<f32>;
@group(0) @binding(1) var<storage, read_write> dUp: array<f32>;
@group(0) @binding(2) var<storage, read> dOut: array<f32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read> up: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = id.x + id.y * groups.x * 64u;
  if (i >= params.count) { return; }
  let g = gate[i];
  let sigmoid = 1.0 / (1.0 + exp(-g));
  dGate[i] += dOut[i] * up[i] * sigmoid * (1.0 + g * (1.0 - sigmoid));
  dUp[i] += dOut[i] * g * sigmoid;
}
