// Sizes linear in the runtime token count T, and dispatch counts over them. Shared by every
// backend and by runtimes, which evaluate them once T is known.
import type { DispatchDim, SizeExpr } from './kernel-ir.ts';

export const fixed = (constant: number): SizeExpr => ({ tokens: 0, constant });
export const perToken = (tokens: number, constant = 0): SizeExpr => ({ tokens, constant });
export const ONE: DispatchDim = { count: fixed(1), per: 1 };

export function evaluateSize(size: SizeExpr, tokens: number): number {
  return size.tokens * tokens + size.constant;
}

export function evaluateDispatch(dim: DispatchDim, tokens: number): number {
  return Math.ceil(evaluateSize(dim.count, tokens) / dim.per);
}

/** `T`, `64`, `4*T + 160`: the form manifests and generated headers show. */
export function formatSize(size: SizeExpr): string {
  const { tokens, constant } = size;
  if (tokens === 0) return String(constant);
  const scaled = tokens === 1 ? 'T' : `${tokens}*T`;
  return constant === 0 ? scaled : `${scaled} + ${constant}`;
}

export function formatShape(shape: readonly SizeExpr[]): string {
  return `[${shape.map(formatSize).join(', ')}]`;
}

export function formatDispatch(dim: DispatchDim): string {
  if (dim.per === 1) return formatSize(dim.count);
  const count = formatSize(dim.count);
  return `ceil(${count.includes(' ') ? `(${count})` : count} / ${dim.per})`;
}
