// The copies that stack a QA-LoRA adapter into its layer's base GEMM (gemm-linear.ts), on the
// convert model op's copyActivation and scaledToActivation entries:
//   y = [x | v] · [Ŵ ; σ·B]   one GEMM over K + r, instead of x·Ŵ and then y += σ·v·B.
// `columns` copies a 16-bit matrix into columns of a wider one (x, then v, into [T, K + r]);
// `scaledRows` writes σ·B, rounded to the activation type, into rows of the weight scratch under
// Ŵ. The operands are DeviceMatrix values (byte offsets, row strides), checked against what the
// kernels read, so a layout they would misread is an error here.
import type { DeviceBuffer, DeviceMatrix } from './cuda.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';

export interface DeviceStacking {
  /** out[i, j] = source[i, j], bits unchanged: two 16-bit matrices of one shape, each with its own row stride and offset. */
  readonly columns: (out: DeviceMatrix, source: DeviceMatrix) => void;
  /** out[i, j] = round(scale · source[i · out.columns + j]): source dense float32 [out.rows, out.columns]. */
  readonly scaledRows: (out: DeviceMatrix, source: DeviceBuffer, scale: number) => void;
}

/** The convert op's two entries, or undefined when its kernels have neither (compiled before them): then adapters keep their own GEMM. */
export function deviceStacking(ops: ModelOpLauncher): DeviceStacking | undefined {
  if (!ops.has('convert') || !ops.hasEntry('convert', 'copyActivation') || !ops.hasEntry('convert', 'scaledToActivation')) return undefined;
  const kernel = ops.kernel('convert');
  /** The kernel's name is its activation type (convert_bf16, convert_f16). */
  const check16 = (x: DeviceMatrix, what: string) => {
    if (!kernel.kernel.endsWith(`_${x.type}`)) throw new Error(`${kernel.kernel}: ${what} is ${x.type}`);
  };
  /** A byte offset as whole elements of 2 bytes. */
  const elementsAt = (x: DeviceMatrix, what: string) => {
    const offset = x.offset ?? 0;
    if (offset % 2 !== 0) throw new Error(`${kernel.kernel}: ${what} starts at byte ${offset}, inside an element`);
    return offset / 2;
  };
  return {
    columns(out, source) {
      check16(out, 'the output');
      check16(source, 'the source');
      if (out.rows !== source.rows || out.columns !== source.columns) throw new Error(`${kernel.kernel}: copying ${source.rows}×${source.columns} into ${out.rows}×${out.columns}`);
      ops.launch('convert', 'copyActivation', {
        out: out.buffer, source: source.buffer, rows: out.rows, columns: out.columns, stride: out.ld ?? out.columns, sourceStride: source.ld ?? source.columns,
        offset: elementsAt(out, 'the output'), sourceOffset: elementsAt(source, 'the source'),
      });
    },
    scaledRows(out, source, scale) {
      check16(out, 'the output');
      if (source.bytes < out.rows * out.columns * 4) throw new Error(`${kernel.kernel}: ${out.rows}×${out.columns} float32 values from a buffer of ${source.bytes} bytes`);
      ops.launch('convert', 'scaledToActivation', {
        out: out.buffer, source, rows: out.rows, columns: out.columns, stride: out.ld ?? out.columns, offset: elementsAt(out, 'the output'), scale,
      });
    },
  };
}
