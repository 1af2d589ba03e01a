// What each kernel role computes, in one line of ASCII math: the headers of every emitted
// file (CUDA and WGSL alike) quote it.
export const ROLE_FORMULAS: Readonly<Record<string, string>> = {
  forward: 'y = x*W-hat + adapterScale * (drop(pool(x)) * A) * B; saves u = pool(x) and v = drop(u) * A',
  decode: 'the forward for T <= 16 tokens (memory-bound: each weight code read once)',
  backward_data: 'dx = dy * W-hat^T + unpool(du)',
  adapter_grad: 'dv = adapterScale * dy * B^T, dB = adapterScale * v^T * dy, du = drop(dv * A^T), dA = drop(u)^T * dv',
  quantize: 'round-to-nearest: q, s, z of W, group-wise along the input',
  pack: 'GPTQ v1 qweight <-> one code per element',
  dequantize: 'W-hat = s * (q - z)',
  merge: "z' = z - poolingFactor * adapterScale * (A * B) / s",
};
