// LLaMA's gated MLP activation: h = silu(gate) ⊙ up, silu(g) = g·σ(g).
//
//   dgate = dh · up · σ(g)·(1 + g·(1 − σ(g)))      (d silu / dg)
//   dup   = dh · silu(g)
import type { Floats } from './floats.ts';

export function swigluForward(out: Floats, gate: Floats, up: Floats, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i]; // LlamaForward's expression, same rounding
  }
}

export function swigluBackward(dGate: Floats, dUp: Floats, dOut: Floats, gate: Floats, up: Floats, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i];
    const sigmoid = 1 / (1 + Math.exp(-g));
    dGate[i] += dOut[i] * up[i] * sigmoid * (1 + g * (1 - sigmoid));
    dUp[i] += dOut[i] * g * sigmoid;
  }
}
