// Round half to even ("banker's rounding"), the rounding of torch.round and of every GPTQ /
// AutoGPTQ quantizer. JavaScript's Math.round breaks ties toward +∞ instead, which would make
// the oracle disagree with PyTorch checkpoints exactly on ties: W/s = 2.5 must give 2, not 3,
// and −1.5 must give −2, not −1. Ties are common in practice (for instance z = round(−xmin/s)
// when a group's range is an exact multiple of s), so the choice matters.

/** Nearest integer to x; ties go to the even neighbour, as torch.round does. */
export function roundHalfEven(x: number): number {
  const nearest = Math.round(x); // ties toward +∞
  // Math.round returned the upper neighbour of a tie exactly when nearest − x is 0.5; the
  // subtraction is exact there (nearest and x are within a factor of two, Sterbenz), so an
  // odd upper neighbour is moved down to the even one.
  if (nearest - x === 0.5 && nearest % 2 !== 0) return nearest - 1;
  return nearest;
}
