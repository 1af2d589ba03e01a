// The quantize and pack kernels on the simulated device (simulated-device.ts): a line-for-line
// TypeScript transcription of templates/cuda/quantize.cu.hbs's quantizeRtn and pack.cu.hbs's
// packQweight and unpackQweight, one (column, group) or (column, word row) a "thread" — float32
// weights widened to float64, fmin/fmax, IEEE float64 division, rint (half to even), the scale
// stored as float32 — so that the device quantization's tests run the kernels' logic, not the
// host RTN they are compared with (src/quant/rtn.ts is not imported here).
import { elementsOf } from './simulated-device.ts';

type Constants = Readonly<Record<string, number>>;

/** C's rint: nearest integer, ties to even. */
function rint(x: number): number {
  const floor = Math.floor(x), rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** quantizeRtn: weight [N, Kp] float32 → codes [Kp, N] uint32, groupScalesAndZeros s [L, N] then z [L, N] float32. */
function quantizeRtn(c: Constants, symmetric: boolean, bytes: (name: string) => Uint8Array): void {
  const weight = elementsOf(Float32Array, bytes('weight'));
  const codes = elementsOf(Uint32Array, bytes('codes'));
  const scalesAndZeros = elementsOf(Float32Array, bytes('groupScalesAndZeros'));
  const K = c['PADDED_IN_FEATURES']!, N = c['OUT_FEATURES']!, g = c['GROUP_SIZE']!, L = c['GROUPS']!, maxCode = c['MAX_CODE']!;
  for (let group = 0; group < L; group++) {
    for (let column = 0; column < N; column++) {
      const first = column * K + group * g;
      let groupMin = weight[first]!, groupMax = groupMin;
      for (let i = 1; i < g; i++) {
        groupMin = Math.min(groupMin, weight[first + i]!);
        groupMax = Math.max(groupMax, weight[first + i]!);
      }
      let low = Math.min(0, groupMin), high = Math.max(0, groupMax);
      if (symmetric) {
        high = Math.max(Math.abs(low), high);
        if (low < 0) low = -high;
      }
      if (low === 0 && high === 0) {
        low = -1;
        high = 1;
      }
      const scale = (high - low) / maxCode;
      const zero = symmetric ? (maxCode + 1) >>> 1 : rint(-low / scale) + 0;
      scalesAndZeros[group * N + column] = scale; // a Float32Array store: __double2float_rn
      scalesAndZeros[L * N + group * N + column] = zero;
      for (let i = 0; i < g; i++) {
        const code = Math.min(Math.max(rint(weight[first + i]! / scale) + zero, 0), maxCode);
        codes[(group * g + i) * N + column] = code;
      }
    }
  }
}

/** packQweight (codes → GPTQ v1 words, one word a "thread") and unpackQweight (its inverse). */
function pack(entry: 'packQweight' | 'unpackQweight', c: Constants, bytes: (name: string) => Uint8Array): void {
  const codes = elementsOf(Uint32Array, bytes('codes'));
  const qweight = elementsOf(Uint32Array, bytes('qweight'));
  const K = c['PADDED_IN_FEATURES']!, N = c['OUT_FEATURES']!, bits = c['BITS']!, mask = c['CODE_MASK']!, wordRows = c['WORD_ROWS']!;
  if (entry === 'unpackQweight') {
    for (let i = 0; i < K; i++) for (let column = 0; column < N; column++) {
      const first = i * bits, word = first >>> 5, shift = first & 31;
      let value = qweight[word * N + column]! >>> shift;
      if (shift + bits > 32) value |= qweight[(word + 1) * N + column]! << (32 - shift);
      codes[i * N + column] = value & mask;
    }
    return;
  }
  for (let wordRow = 0; wordRow < wordRows; wordRow++) {
    for (let column = 0; column < N; column++) {
      const firstBit = wordRow * 32, firstCode = Math.floor(firstBit / bits);
      const lastCode = Math.min(Math.floor((firstBit + 31) / bits), K - 1);
      let word = 0;
      for (let i = firstCode; i <= lastCode; i++) {
        const code = codes[i * N + column]! & mask, codeBit = i * bits;
        word |= codeBit >= firstBit ? code << (codeBit - firstBit) : code >>> (firstBit - codeBit);
      }
      qweight[wordRow * N + column] = word >>> 0;
    }
  }
}

/** Runs `entry` of a quantize or pack kernel; false for any other entry point. */
export function simulateQuantizeEntry(entry: string, kernelName: string, constants: Constants, bytes: (name: string) => Uint8Array): boolean {
  if (entry === 'quantizeRtn') quantizeRtn(constants, kernelName.includes('_sym_'), bytes);
  else if (entry === 'packQweight' || entry === 'unpackQweight') pack(entry, constants, bytes);
  else return false;
  return true;
}
