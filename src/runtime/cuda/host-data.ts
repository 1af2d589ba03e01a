// Activations as the CUDA kernels read and write them: bf16 or fp16, rounded to nearest even as
// __float2bfloat16_rn and __float2half_rn do. (The frozen and adapter buffers, which do not
// depend on the activation type, are ../kernel-buffers.ts.)

export type ActivationType = 'bf16' | 'f16' | 'f32';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function bf16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16Value(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** IEEE binary16, round to nearest even, with subnormals, infinities and NaN. */
export function f16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    const halfway = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let half = mantissa >>> shift;
    if (rest > halfway || (rest === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++; // a carry into the exponent is correct rounding
  return sign | half;
}

export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

export function bytesPerElement(type: string): number {
  switch (type) {
    case 'bf16': case 'f16': return 2;
    case 'f32': case 'u32': case 'i32': return 4;
    default: throw new TypeError(`no host layout for element type '${type}'`);
  }
}

/** `count` values of `source` (from `offset`) in the activation type's bytes, written into `target`. */
export function encodeActivations(type: ActivationType, source: ArrayLike<number>, target: Uint8Array, count = source.length): void {
  if (type === 'f32') {
    const out = new Float32Array(target.buffer, target.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = source[i]!;
    return;
  }
  const out = new Uint16Array(target.buffer, target.byteOffset, count);
  const encode = type === 'bf16' ? bf16Bits : f16Bits;
  for (let i = 0; i < count; i++) out[i] = encode(source[i]!);
}

/** The inverse: `count` activations from `source` bytes as numbers, through `store(i, value)`. */
export function decodeActivations(type: ActivationType, source: Uint8Array, count: number, store: (index: number, value: number) => void): void {
  if (type === 'f32') {
    const values = new Float32Array(source.buffer, source.byteOffset, count);
    for (let i = 0; i < count; i++) store(i, values[i]!);
    return;
  }
  const values = new Uint16Array(source.buffer, source.byteOffset, count);
  const decode = type === 'bf16' ? bf16Value : f16Value;
  for (let i = 0; i < count; i++) store(i, decode(values[i]!));
}

/** rows × width activations held in rows of `stride` elements (padding dropped), through `store(r·width + i, value)`. */
export function decodeRows(type: ActivationType, source: Uint8Array, rows: number, width: number, stride: number, store: (index: number, value: number) => void): void {
  decodeActivations(type, source, rows * stride, (index, value) => {
    const r = Math.floor(index / stride), i = index - r * stride;
    if (i < width) store(r * width + i, value);
  });
}

/** The first rows × width of `values` in `layout`'s encoding, in rows of `stride` elements (padding zero). */
export function encodeRows(values: ArrayLike<number>, layout: { readonly encoding: ActivationType; readonly rows: number; readonly width: number; readonly stride: number }): ArrayBufferView {
  const { rows, width, stride, encoding } = layout;
  if (encoding === 'f32' && stride === width && values instanceof Float32Array) return values.subarray(0, rows * width);
  let padded: ArrayLike<number> = values;
  if (stride !== width) {
    const rowsOf = new Float32Array(rows * stride);
    for (let r = 0; r < rows; r++) for (let i = 0; i < width; i++) rowsOf[r * stride + i] = values[r * width + i]!;
    padded = rowsOf;
  }
  const bytes = new Uint8Array(rows * stride * bytesPerElement(encoding));
  encodeActivations(encoding, padded, bytes, rows * stride);
  return bytes;
}
