// Rotary position embedding, exactly as llama2.c's run.c (and LlamaForward): consecutive pairs
// (2p, 2p+1) of each head are rotated by angle pos · θ^(−2p/headSize), the tables being built
// with run.c's float32 rounding. θ is the model's (Architecture.ropeTheta; run.c's is 10000) and
// travels in the tables, so every backend's rope op rotates by the model's angles. The token at
// index t of a sequence has position t.
//
//   forward:  (y0, y1) = (x0·cos − x1·sin, x0·sin + x1·cos)
//   backward: the rotation is orthogonal, so dx = Rᵀ·dy:
//             (dx0, dx1) = (dy0·cos + dy1·sin, −dy0·sin + dy1·cos)
//
// Both work in place and save nothing: the backward needs only the position.
import { ropeAngles } from '../../model/rope-angles.ts';
import type { Floats } from './floats.ts';

export interface RopeTables {
  readonly headSize: number;
  readonly positions: number;
  /** The base the angles were built with. */
  readonly theta: number;
  /** cos/sin of the angle for (position, pair), [positions, headSize/2]. */
  readonly cos: Float32Array;
  readonly sin: Float32Array;
}

export function ropeTables(headSize: number, positions: number, theta: number): RopeTables {
  return { headSize, positions, theta, ...ropeAngles(headSize, positions, theta) };
}

/** Throws unless the tables cover seqLen positions and width is whole heads (every backend checks so on the host). */
export function checkRopeShape(tables: Pick<RopeTables, 'headSize' | 'positions'>, seqLen: number, width: number): void {
  if (seqLen > tables.positions) throw new RangeError(`sequence length ${seqLen} exceeds the RoPE tables' ${tables.positions} positions`);
  if (width % tables.headSize !== 0) throw new RangeError(`width ${width} is not a multiple of the head size ${tables.headSize}`);
}

function rotate(x: Floats, tables: RopeTables, batch: number, seqLen: number, width: number, direction: 1 | -1): void {
  const { headSize, cos, sin } = tables;
  checkRopeShape(tables, seqLen, width);
  const pairs = headSize / 2;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen; t++) {
      const row = (b * seqLen + t) * width;
      const table = t * pairs;
      for (let i = 0; i < width; i += 2) {
        const pair = (i % headSize) / 2;
        const c = cos[table + pair];
        const s = direction * sin[table + pair];
        const x0 = x[row + i], x1 = x[row + i + 1];
        x[row + i] = x0 * c - x1 * s;
        x[row + i + 1] = x0 * s + x1 * c;
      }
    }
  }
}

/** In place on x: [batch, seqLen, width], width = heads · headSize. */
export function ropeForward(x: Floats, tables: RopeTables, batch: number, seqLen: number, width: number): void {
  rotate(x, tables, batch, seqLen, width, 1);
}

/** In place on dx (the gradient w.r.t. the rotated values becomes the one w.r.t. the inputs). */
export function ropeBackward(dx: Floats, tables: RopeTables, batch: number, seqLen: number, width: number): void {
  rotate(dx, tables, batch, seqLen, width, -1);
}
