// Dense row-major float64 products, written as plain triple loops: the oracle trades speed for
// being obviously right. Shapes are passed explicitly; a is m×k means a[i·k + j].

/** a (m×k) · b (k×n) → m×n. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** aᵀ · b with a stored k×m and b stored k×n → m×n. */
export function matmulTransposeA(a: Float64Array, b: Float64Array, k: number, m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[p * m + i] * b[p * n + j];
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** a · bᵀ with a stored m×k and b stored n×k → m×n. */
export function matmulTransposeB(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[j * k + p];
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** Adds bias (length n) to every row of an m×n matrix, in place. */
export function addRowBias(out: Float64Array, bias: Float64Array, m: number, n: number): void {
  if (bias.length !== n) throw new RangeError(`bias has ${bias.length} entries, expected ${n}`);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] += bias[j];
}
