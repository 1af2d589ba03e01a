// The conversions around the linear kernels: their bindings hold 16-bit activations (the
// spec's `target cuda` activation) with rows padded to the kernel's in_features, while every
// other op keeps float32 rows of the model's width. One kernel per 16-bit type; widths and
// strides are run-time values, so one file serves every layer. The quantized linear layers on
// dequantize + cuBLAS also stack their adapter into the base GEMM here (gemm-linear.ts): x and v
// side by side in one [T, K + r] matrix (copyActivation), σ·B under Ŵ in the weight scratch
// (scaledToActivation).
import type { ModelOpKernel } from '../model-ops.ts';
import { activationType, entryPoint, accumulated, f32, input, output, pointer, u32, type ModelShapes } from './shapes.ts';

export const CONVERT_THREADS = 256;
/** Consecutive elements a thread of copyActivation moves: one 16-byte load and store where the layout allows. */
export const COPY_VECTOR = 8;

export function convertKernel(shapes: ModelShapes): ModelOpKernel {
  const type = activationType('convert', shapes);
  const kernel = `convert_${shapes.activation}`;
  const grid = `grid.x = rows, grid.y = ceil(stride / ${CONVERT_THREADS})`;
  const sizes = [u32('rows', 'rows'), u32('columns', 'float32 row width (columns <= stride)'), u32('stride', '16-bit row stride in elements (the kernel binding\'s padded width)')];
  const source16 = pointer('source', `const ${type.cType}*`, `${type.spelled} [rows, stride] starting at element offset, read`);
  const offset = u32('offset', 'elements of source before row 0 (a part of a packed binding)');
  return {
    kernel, op: 'convert', template: 'ops/convert.cu.hbs',
    constants: { THREADS: CONVERT_THREADS, COPY_VECTOR },
    entryPoints: [
      entryPoint(kernel, 'toActivation', {
        parameters: [pointer('out', `${type.cType}*`, `${type.spelled} [rows, stride], written (padding columns zeroed)`), input('source', '[rows, columns]'), ...sizes],
        block: [CONVERT_THREADS, 1, 1], grid,
        computes: 'out[r, c] = round(source[r, c]) for c < columns, 0 for columns <= c < stride (round to nearest even)',
      }),
      entryPoint(kernel, 'fromActivation', {
        parameters: [output('out', '[rows, columns]'), source16, ...sizes, offset],
        block: [CONVERT_THREADS, 1, 1], grid: `grid.x = rows, grid.y = ceil(columns / ${CONVERT_THREADS})`,
        computes: 'out[r, c] = source[offset + r * stride + c] for c < columns (the padding dropped)',
      }),
      entryPoint(kernel, 'copyActivation', {
        parameters: [
          pointer('out', `${type.cType}*`, `${type.spelled} [rows, stride] starting at element offset, columns [0, columns) written, the rest untouched`),
          pointer('source', `const ${type.cType}*`, `${type.spelled} [rows, sourceStride] starting at element sourceOffset, read`),
          u32('rows', 'rows'), u32('columns', 'elements copied a row (columns <= stride, sourceStride)'), u32('stride', 'out\'s row stride in elements'),
          u32('sourceStride', 'source\'s row stride in elements'), u32('offset', 'elements of out before row 0'), u32('sourceOffset', 'elements of source before row 0'),
        ],
        block: [CONVERT_THREADS, 1, 1], grid: `grid.x = rows, grid.y = ceil(columns / ${COPY_VECTOR * CONVERT_THREADS})`,
        computes: `out[offset + r * stride + c] = source[sourceOffset + r * sourceStride + c] for c < columns (the bits, unchanged; ${COPY_VECTOR} consecutive c a thread)`,
      }),
      entryPoint(kernel, 'scaledToActivation', {
        parameters: [
          pointer('out', `${type.cType}*`, `${type.spelled} [rows, stride] starting at element offset, columns [0, columns) written, the rest untouched`),
          input('source', '[rows, columns]'), u32('rows', 'rows'), u32('columns', 'float32 row width (columns <= stride)'), u32('stride', 'out\'s row stride in elements'),
          u32('offset', 'elements of out before row 0'), f32('scale', 'the factor every value is multiplied by before rounding'),
        ],
        block: [CONVERT_THREADS, 1, 1], grid: `grid.x = rows, grid.y = ceil(columns / ${CONVERT_THREADS})`,
        computes: 'out[offset + r * stride + c] = round(scale * source[r, c]) for c < columns (round to nearest even)',
      }),
      entryPoint(kernel, 'accumulateFromActivation', {
        parameters: [accumulated('out', '[rows, columns]'), source16, ...sizes, offset],
        block: [CONVERT_THREADS, 1, 1], grid: `grid.x = rows, grid.y = ceil(columns / ${CONVERT_THREADS})`,
        computes: 'out[r, c] += source[offset + r * stride + c] for c < columns',
      }),
    ],
  };
}
