// Finite-difference helpers for the training ops: every check perturbs a Float64Array in place
// and compares the op's backward with central differences of a scalar loss.
import { finiteDifferenceGradient } from '../reference/gradient-check.ts';
import { relativeMaxError } from './relative-error.ts';
import type { Rng } from '../../src/reference/random.ts';

export function randomArray(rng: Rng, length: number, scale = 1): Float64Array {
  return Float64Array.from({ length }, () => scale * rng.normal());
}

/** ⟨a, b⟩: the loss whose gradient w.r.t. a is b. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** max relative error between `analytic` and central differences of `loss` over `param`. */
export function gradientError(loss: () => number, param: Float64Array, analytic: Float64Array, h = 1e-5): number {
  return relativeMaxError(analytic, finiteDifferenceGradient(loss, param, h));
}
