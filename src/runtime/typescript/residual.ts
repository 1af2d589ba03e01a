// The model's two pieces of glue, as ops so that a device backend can keep the arrays on its
// device: the residual connection out = a + b, and zeroing a gradient buffer before a backward
// accumulates into it. `syncToHost` is the other half of that contract: a device backend may
// leave the arrays its ops wrote on the device, and the model calls it for the arrays it hands
// to its caller (the logits after a forward, the gradients after a backward). Host backends
// compute in place, so for them it does nothing.
import type { Floats } from './floats.ts';

/** out = a + b, elementwise over `count` values; out is neither a nor b. */
export function residualAdd(out: Floats, a: Floats, b: Floats, count: number): void {
  for (let i = 0; i < count; i++) out[i] = a[i] + b[i];
}

export function zeroFill(x: Floats): void {
  x.fill(0);
}

/** After this, the host arrays hold what the ops last wrote to them. */
export function syncToHost(_arrays: readonly Floats[]): void {}
