// RoPE's cos/sin tables as llama2.c's run.c precomputes them: pair p of a head at position pos
// turns by pos · θ^(−2p/headSize), with run.c's float32 rounding at each step. The model's θ
// (Architecture.ropeTheta) is the only input besides the shape; LlamaForward and every backend's
// rope op (through src/runtime/typescript/rope.ts's tables) rotate by these.

/** cos/sin for every (position, pair): run.c's precompute, for the model's θ. */
export function ropeAngles(headSize: number, positions: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  if (headSize % 2 !== 0) throw new RangeError(`RoPE needs an even head size, got ${headSize}`);
  if (!(Number.isFinite(theta) && theta > 0)) throw new RangeError(`RoPE needs a positive θ, got ${theta}`);
  const pairs = headSize / 2;
  const cos = new Float32Array(positions * pairs);
  const sin = new Float32Array(positions * pairs);
  for (let pos = 0; pos < positions; pos++) {
    for (let p = 0; p < pairs; p++) {
      // Rounded to float32 at each step as run.c's float arithmetic does.
      const freq = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * p) / headSize))));
      const angle = Math.fround(pos * freq);
      cos[pos * pairs + p] = Math.cos(angle);
      sin[pos * pairs + p] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
