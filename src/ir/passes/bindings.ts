// Pass 9: the kernel's interface. Bindings (index, meaningful name, element type, shape,
// access), the uniform struct, the compile-time constants, and each entry point's dispatch.
// Binding 0 is the uniform struct when the kernel has one; storage buffers follow in order.
import type { KernelRole } from '../../plan/plan.ts';
import type {
  Access, Binding, BindingPart, Constant, DispatchDim, EntryPoint, KernelIR, KernelProgram, LayerConfig, ScalarType, SizeExpr, UniformField,
} from '../kernel-ir.ts';
import { fixed, ONE, perToken } from '../size-expr.ts';
import { configOfKernel } from './share-layers.ts';

interface BufferSpec {
  readonly name: string;
  readonly elementType: ScalarType;
  readonly shape: readonly SizeExpr[];
  readonly access: Exclude<Access, 'uniform'>;
  readonly doc: string;
  readonly parts?: readonly BindingPart[];
}

/** One binding holding several fixed-size tensors back to back. */
function packed(name: string, elementType: ScalarType, access: BufferSpec['access'], doc: string, parts: readonly Omit<BindingPart, 'offset'>[]): BufferSpec {
  let offset = 0;
  const placed = parts.map((part) => {
    const at = offset;
    offset += part.shape.reduce((n, size) => n * size.constant, 1);
    return { ...part, offset: at };
  });
  return { name, elementType, shape: [fixed(offset)], access, doc, parts: placed };
}

interface Interface {
  readonly uniforms: readonly Omit<UniformField, 'offset'>[];
  readonly buffers: readonly BufferSpec[];
  readonly entryPoints: readonly { name: string; computes: string; dispatch: readonly [DispatchDim, DispatchDim, DispatchDim]; uses: readonly string[] }[];
}

const TOKENS = { name: 'tokens', type: 'u32', doc: 'T, rows of x' } as const;
const ADAPTER_SCALE = { name: 'adapterScale', type: 'f32', doc: 'σ = alpha / rank' } as const;
const over = (count: SizeExpr, per: number): DispatchDim => ({ count, per });

/**
 * Input rows one dequantize thread writes: the codes of one packed word (32 / bits rows), or of
 * three words for 3-bit codes, whose 32 codes fill 96 bits. One thread a weight (as before
 * 1781d13's successor) read each word 32 / bits times and each scale and zero once a row: the
 * 4096×11008 layer ran at ~15 % of its memory floor on the H200.
 */
export function dequantizeRowsPerThread(bits: number): number {
  return bits === 3 ? 32 : 32 / bits;
}

function interfaceOf(kernel: KernelIR, c: LayerConfig): Interface {
  const { activation, scale, zero, adapter: adapterType, code } = kernel.dtypes!;
  const { wordRows } = kernel.weightLayout!;
  const { tileRows, tileColumns } = kernel.tiling!;
  const K = c.inFeatures, Kp = c.paddedInFeatures, N = c.outFeatures, L = c.groups;
  const r = c.adapter?.rank ?? 0;
  const T = perToken(1);
  const read = 'read' as const, write = 'read_write' as const;
  if (scale !== zero) throw new Error(`${kernel.name}: scales and zeros share a binding, so they need one dtype`);
  const scalesAndZeros = (access: BufferSpec['access']) => packed('groupScalesAndZeros', scale, access, 's then z, each L×N', [
    { name: 'groupScales', shape: [fixed(L), fixed(N)], doc: 's[k, o]' },
    { name: 'groupZeros', shape: [fixed(L), fixed(N)], doc: 'z[k, o], float (may be fractional after a merge)' },
  ]);
  const quantized: BufferSpec[] = [
    { name: 'qweight', elementType: code, shape: [fixed(wordRows), fixed(N)], access: read, doc: 'GPTQ v1 packed codes' },
    scalesAndZeros(read),
  ];
  const adapterParts = (suffix: string, what: string) => [
    { name: `adapterA${suffix}`, shape: [fixed(L), fixed(r)], doc: `${what}A, L×r` },
    { name: `adapterB${suffix}`, shape: [fixed(r), fixed(N)], doc: `${what}B, r×N` },
  ];
  const adapterWeights: BufferSpec[] = c.adapter ? [packed('adapterWeights', adapterType, read, 'A then B', adapterParts('', ''))] : [];
  const dropout: BufferSpec[] = c.adapter?.dropout
    ? [{ name: 'dropoutMultiplier', elementType: adapterType, shape: [T, fixed(L)], access: read, doc: 'keep/(1−p) per pooled input, 0 where dropped' }]
    : [];
  const all = (names: readonly BufferSpec[]) => names.map((b) => b.name);

  switch (kernel.role as KernelRole) {
    case 'forward':
    case 'decode': {
      const saved: BufferSpec[] = c.adapter
        ? [
            { name: 'pooledInput', elementType: activation, shape: [T, fixed(L)], access: write, doc: 'u = pool(x), saved for the backward' },
            { name: 'adapterActivation', elementType: activation, shape: [T, fixed(r)], access: write, doc: 'v = drop(u)·A, saved for the backward' },
          ]
        : [];
      const buffers: BufferSpec[] = [
        { name: 'input', elementType: activation, shape: [T, fixed(K)], access: read, doc: 'x' },
        ...quantized, ...adapterWeights, ...dropout,
        { name: 'output', elementType: activation, shape: [T, fixed(N)], access: write, doc: 'y = x·Ŵ + σ·v·B' },
        ...saved,
      ];
      const dispatch: readonly [DispatchDim, DispatchDim, DispatchDim] =
        kernel.role === 'forward' ? [over(fixed(N), tileColumns), over(T, tileRows), ONE] : [over(fixed(N), tileColumns), ONE, ONE];
      return {
        uniforms: c.adapter ? [TOKENS, ADAPTER_SCALE] : [TOKENS],
        buffers,
        entryPoints: [{
          name: kernel.role === 'forward' ? 'forward' : 'decode',
          computes: c.adapter ? 'y, u, v' : 'y',
          dispatch,
          uses: ['params', ...all(buffers)],
        }],
      };
    }
    case 'backward_data': {
      const buffers: BufferSpec[] = [
        { name: 'outputGrad', elementType: activation, shape: [T, fixed(N)], access: read, doc: 'dy' },
        ...quantized,
        ...(c.adapter ? [{ name: 'pooledInputGrad', elementType: activation, shape: [T, fixed(L)], access: read, doc: 'du (dropout applied), from adapter_grad' } as const] : []),
        { name: 'inputGrad', elementType: activation, shape: [T, fixed(K)], access: write, doc: 'dx = dy·Ŵᵀ + unpool(du)' },
      ];
      return {
        uniforms: [TOKENS],
        buffers,
        entryPoints: [{ name: 'backwardData', computes: 'dx', dispatch: [over(fixed(K), tileColumns), over(T, tileRows), ONE], uses: ['params', ...all(buffers)] }],
      };
    }
    case 'adapter_grad': {
      const buffers: BufferSpec[] = [
        { name: 'outputGrad', elementType: activation, shape: [T, fixed(N)], access: read, doc: 'dy' },
        { name: 'pooledInput', elementType: activation, shape: [T, fixed(L)], access: read, doc: 'u, saved by forward' },
        { name: 'adapterActivation', elementType: activation, shape: [T, fixed(r)], access: read, doc: 'v, saved by forward' },
        ...adapterWeights, ...dropout,
        { name: 'adapterActivationGrad', elementType: activation, shape: [T, fixed(r)], access: write, doc: 'dv = σ·dy·Bᵀ' },
        { name: 'pooledInputGrad', elementType: activation, shape: [T, fixed(L)], access: write, doc: 'du = drop(dv·Aᵀ)' },
        packed('adapterWeightGrads', adapterType, write, 'dA = drop(u)ᵀ·dv then dB = σ·vᵀ·dy, laid out as adapterWeights', adapterParts('Grad', 'd')),
      ];
      const threads = kernel.tiling!.workgroupSize[0];
      return {
        uniforms: [TOKENS, ADAPTER_SCALE],
        buffers,
        entryPoints: [
          {
            name: 'adapterOutputGrads', computes: 'dv, dB',
            dispatch: [over(perToken(r, r * N), threads), ONE, ONE],
            uses: ['params', 'outputGrad', 'adapterActivation', 'adapterWeights', 'adapterActivationGrad', 'adapterWeightGrads'],
          },
          {
            name: 'adapterInputGrads', computes: 'du, dA (after adapterOutputGrads)',
            dispatch: [over(perToken(L, L * r), threads), ONE, ONE],
            uses: ['params', 'pooledInput', 'adapterWeights', ...all(dropout), 'adapterActivationGrad', 'pooledInputGrad', 'adapterWeightGrads'],
          },
        ],
      };
    }
    case 'quantize': {
      const buffers: BufferSpec[] = [
        { name: 'weight', elementType: 'f32', shape: [fixed(N), fixed(Kp)], access: read, doc: 'W as a checkpoint stores it, [out, in], padded columns zero' },
        { name: 'codes', elementType: code, shape: [fixed(Kp), fixed(N)], access: write, doc: 'q, one code per element' },
        scalesAndZeros(write),
      ];
      return {
        uniforms: [], buffers,
        entryPoints: [{ name: 'quantizeRtn', computes: 'q, s, z', dispatch: [over(fixed(N), tileColumns), over(fixed(L), 1), ONE], uses: all(buffers) }],
      };
    }
    case 'pack': {
      const buffers: BufferSpec[] = [
        { name: 'codes', elementType: code, shape: [fixed(Kp), fixed(N)], access: write, doc: 'q, one code per element' },
        { name: 'qweight', elementType: code, shape: [fixed(wordRows), fixed(N)], access: write, doc: 'GPTQ v1 packed codes' },
      ];
      return {
        uniforms: [], buffers,
        entryPoints: [
          { name: 'packQweight', computes: 'qweight from codes', dispatch: [over(fixed(N), tileColumns), over(fixed(wordRows), 1), ONE], uses: all(buffers) },
          { name: 'unpackQweight', computes: 'codes from qweight', dispatch: [over(fixed(N), tileColumns), over(fixed(Kp), 1), ONE], uses: all(buffers) },
        ],
      };
    }
    case 'dequantize': {
      const buffers: BufferSpec[] = [
        ...quantized,
        { name: 'weight', elementType: activation, shape: [fixed(Kp), fixed(N)], access: write, doc: 'Ŵ = s·(q − z)' },
      ];
      return {
        uniforms: [], buffers,
        // A thread per COLUMNS_PER_THREAD columns and ROWS_PER_THREAD input rows (a packed word's codes: read once).
        entryPoints: [{ name: 'dequantize', computes: 'Ŵ', dispatch: [over(fixed(N), tileColumns), over(fixed(Math.ceil(Kp / dequantizeRowsPerThread(c.bits))), 1), ONE], uses: all(buffers) }],
      };
    }
    case 'merge': {
      const buffers: BufferSpec[] = [
        scalesAndZeros(read), ...adapterWeights,
        { name: 'mergedZeros', elementType: zero, shape: [fixed(L), fixed(N)], access: write, doc: "z' = z − c·σ·(A·B)/s" },
      ];
      return {
        uniforms: [ADAPTER_SCALE], buffers,
        entryPoints: [{ name: 'mergeAdapter', computes: "z'", dispatch: [over(fixed(N), tileColumns), over(fixed(L), 1), ONE], uses: ['params', ...all(buffers)] }],
      };
    }
    default:
      throw new Error(`no interface for role ${kernel.role}`);
  }
}

/**
 * The compile-time constants each role reads. A kernel shared by several configurations
 * (adapter_grad keys on L, N and rank only) must not carry constants that differ between them.
 */
const ROLE_CONSTANTS: Readonly<Partial<Record<KernelRole, readonly string[]>>> = {
  quantize: ['PADDED_IN_FEATURES', 'OUT_FEATURES', 'GROUP_SIZE', 'GROUPS', 'MAX_CODE', 'THREADS'],
  pack: ['PADDED_IN_FEATURES', 'OUT_FEATURES', 'BITS', 'CODE_MASK', 'WORD_ROWS', 'THREADS'],
  dequantize: ['PADDED_IN_FEATURES', 'OUT_FEATURES', 'BITS', 'CODE_MASK', 'WORD_ROWS', 'GROUP_SIZE', 'GROUPS', 'ROWS_PER_THREAD', 'COLUMNS_PER_THREAD', 'THREADS'],
  adapter_grad: ['OUT_FEATURES', 'GROUPS', 'RANK', 'THREADS'],
  merge: ['OUT_FEATURES', 'GROUPS', 'RANK', 'POOLING_FACTOR', 'THREADS'],
};

function constantsOf(kernel: KernelIR, c: LayerConfig): Constant[] {
  const wanted = ROLE_CONSTANTS[kernel.role];
  return allConstants(kernel, c).filter((constant) => !wanted || wanted.includes(constant.name));
}

function allConstants(kernel: KernelIR, c: LayerConfig): Constant[] {
  const u = (name: string, value: number): Constant => ({ name, value, type: 'u32' });
  const { tiling, weightLayout } = kernel;
  const constants = [
    u('IN_FEATURES', c.inFeatures), u('PADDED_IN_FEATURES', c.paddedInFeatures), u('OUT_FEATURES', c.outFeatures),
    u('BITS', c.bits), u('CODE_MASK', weightLayout!.codeMask), u('WORD_ROWS', weightLayout!.wordRows),
    u('GROUP_SIZE', c.group), u('GROUPS', c.groups),
  ];
  if (kernel.role === 'dequantize') {
    constants.push(u('ROWS_PER_THREAD', dequantizeRowsPerThread(c.bits)), u('COLUMNS_PER_THREAD', tiling!.tileColumns / tiling!.workgroupSize[0]));
  }
  if (c.adapter) {
    constants.push(u('RANK', c.adapter.rank), { name: 'POOLING_FACTOR', value: c.adapter.poolingFactor, type: 'f32' });
  }
  if (kernel.role === 'quantize') constants.push(u('MAX_CODE', weightLayout!.codeMask));
  if (kernel.shapeClass === 'tiled') {
    constants.push(u('TILE_ROWS', tiling!.tileRows), u('TILE_COLUMNS', tiling!.tileColumns), u('TILE_REDUCE', tiling!.tileReduce));
    if (kernel.role === 'forward') constants.push(u('CHUNKS_PER_GROUP', tiling!.chunksPerGroup));
    const { threadTile, workgroupSize } = tiling!;
    if (threadTile) {
      constants.push(
        u('THREAD_ROWS', threadTile.rows), u('THREAD_COLUMNS', threadTile.columns),
        u('WORKGROUP_ROWS', workgroupSize[1]), u('WORKGROUP_COLUMNS', workgroupSize[0]), u('THREADS', workgroupSize[0] * workgroupSize[1]),
      );
    }
  }
  if (kernel.shapeClass === 'decode') constants.push(u('MAX_TOKENS', tiling!.maxTokens), u('THREADS', tiling!.workgroupSize[0]));
  if (kernel.shapeClass === 'adapter' || kernel.shapeClass === 'elementwise') constants.push(u('THREADS', tiling!.workgroupSize[0]));
  return constants;
}

export function assignBindings(program: KernelProgram): KernelProgram {
  return {
    ...program,
    kernels: program.kernels.map((kernel) => {
      const c = configOfKernel(program, kernel);
      const spec = interfaceOf(kernel, c);
      const hasParams = spec.uniforms.length > 0;
      const bindings: Binding[] = [
        ...(hasParams ? [{ binding: 0, name: 'params', elementType: 'params' as const, shape: [], access: 'uniform' as const, doc: 'run-time values', parts: [] }] : []),
        ...spec.buffers.map((b, i) => ({ binding: i + (hasParams ? 1 : 0), ...b, parts: b.parts ?? [] })),
      ];
      const indexOf = (name: string) => {
        const found = bindings.find((b) => b.name === name);
        if (!found) throw new Error(`${kernel.name}: entry point uses unknown binding ${name}`);
        return found.binding;
      };
      const entryPoints: EntryPoint[] = spec.entryPoints.map((e) => ({
        name: e.name, computes: e.computes, dispatch: e.dispatch,
        uses: e.uses.filter((name) => name !== 'params' || hasParams).map(indexOf),
      }));
      return {
        ...kernel,
        constants: constantsOf(kernel, c),
        bindings,
        uniforms: spec.uniforms.map((field, i) => ({ ...field, offset: 4 * i })),
        entryPoints,
      };
    }),
  };
}
