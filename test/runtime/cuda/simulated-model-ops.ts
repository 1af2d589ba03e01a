// The simulated device (./simulated-device.ts) with the model-op kernels too: a launch of a
// model-op symbol is computed from the buffers bound to its parameters, by name, with the
// TypeScript reference ops — so a test here checks what the cuda backend's host side does (which
// kernel, which parameters in which order, grids, residency, the 16-bit conversions around the
// linear kernels, the loss read-back), not the kernels' code, which the H200 checks against
// float64 (test/backends/cuda/h200/ops).
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import type { CudaFunction, KernelParameter } from '../../../src/runtime/cuda/cuda.ts';
import { drawBits } from '../../../src/runtime/typescript/dropout-draws.ts';
import { bf16Bits, bf16Value, f16Bits, f16Value } from '../../../src/runtime/cuda/host-data.ts';
import { attentionBackward, attentionForward } from '../../../src/runtime/typescript/attention.ts';
import { appendKv, decodeAttention } from '../../../src/runtime/typescript/decode-attention.ts';
import { lmHeadBackward, lmHeadForward } from '../../../src/runtime/typescript/lm-head.ts';
import { rmsnormBackward, rmsnormForward } from '../../../src/runtime/typescript/rmsnorm.ts';
import { ropeBackward, ropeForward } from '../../../src/runtime/typescript/rope.ts';
import { swigluBackward, swigluForward } from '../../../src/runtime/typescript/swiglu.ts';
import { elementsOf, SimulatedDevice } from './simulated-device.ts';

export class SimulatedModelOpDevice extends SimulatedDevice {
  readonly modelOpLaunches: string[] = [];
  /** Beside each of modelOpLaunches, its `rows` argument where it has one (a conversion of activations has the tokens, of an adapter's B its rank). */
  readonly modelOpRows: (number | undefined)[] = [];

  constructor(manifests: readonly CudaManifestKernel[], private readonly modelOps: readonly ModelOpManifestKernel[]) {
    super(manifests);
  }

  protected override execute(fn: CudaFunction, grid: readonly number[], block: readonly number[], shared: number, parameters: readonly KernelParameter[]): void {
    const kernel = this.modelOps.find((k) => k.entryPoints.some((e) => e.symbol === fn.symbol));
    if (kernel === undefined) return super.execute(fn, grid, block, shared, parameters);
    const entry = kernel.entryPoints.find((e) => e.symbol === fn.symbol)!;
    this.modelOpLaunches.push(`${kernel.op}.${entry.name}`);
    if (parameters.length !== entry.parameters.length) throw new Error(`${fn.symbol}: ${parameters.length} parameters, the manifest lists ${entry.parameters.length}`);
    const byName = new Map(entry.parameters.map((p, i) => [p.name, parameters[i]!]));
    const scalar = (name: string) => byName.get(name)!.value as number;
    this.modelOpRows.push(byName.has('rows') ? scalar('rows') : undefined);
    const bytes = (name: string): Uint8Array | undefined => {
      const value = byName.get(name)!.value as bigint;
      if (value === 0n) return undefined;
      const found = this.bytesAt(value);
      if (found === undefined) throw new Error(`${fn.symbol}: ${name} points at no buffer`);
      return found;
    };
    const f32 = (name: string) => elementsOf(Float32Array, bytes(name)!);
    const i32 = (name: string) => elementsOf(Int32Array, bytes(name)!);
    const c = (name: string) => kernel.constants[name]!;
    const sixteen = (name: string) => {
      const raw = elementsOf(Uint16Array, bytes(name)!);
      const [decode, encode] = kernel.kernel.endsWith('f16') && !kernel.kernel.endsWith('bf16') ? [f16Value, f16Bits] : [bf16Value, bf16Bits];
      return { get: (i: number) => decode(raw[i]!), set: (i: number, v: number) => { raw[i] = encode(v); } };
    };
    // An op at a linear boundary computes in float32 and widens its 16-bit inputs or rounds its 16-bit outputs (the kernel's loadFloat and storeFloat).
    const widened = (name: string, count: number) => {
      const values = sixteen(name);
      return Float32Array.from({ length: count }, (_, i) => values.get(i));
    };
    const roundInto = (name: string, values: Float32Array) => {
      const out = sixteen(name);
      values.forEach((v, i) => out.set(i, v));
    };
    const uint32 = (name: string) => {
      const value = scalar(name);
      if (!(Number.isInteger(value) && value >= 0 && value < 2 ** 32)) throw new Error(`${fn.symbol}: ${name} = ${value} is no uint32`);
      return value;
    };
    const rows = () => scalar('rows');
    /** An entry's dropout multiplier from its mask arguments (the seed's word, offset, threshold, keptScale), with the kernel's integer comparison. */
    const maskOf = () => {
      const seed = elementsOf(Uint32Array, bytes('seedWord')!)[0]!, offset = uint32('offset'), threshold = uint32('threshold'), kept = Math.fround(scalar('keptScale'));
      return (index: number) => (drawBits(seed, (offset + index) >>> 0) >= threshold ? kept : 0);
    };
    const counted = (targets: Int32Array, mask: Uint8Array | undefined, r: number) => targets[r]! >= 0 && (mask === undefined || mask[r] !== 0);
    switch (`${kernel.op}.${entry.name}`) {
      case 'embedding.forward': {
        const out = f32('out'), table = f32('table'), tokens = i32('tokens'), C = c('CHANNELS');
        for (let r = 0; r < rows(); r++) out.set(table.subarray(tokens[r]! * C, (tokens[r]! + 1) * C), r * C);
        return;
      }
      case 'embedding.forwardFromActivationTable': {
        const out = f32('out'), table = sixteen('table'), tokens = i32('tokens'), C = c('CHANNELS');
        for (let r = 0; r < rows(); r++) for (let i = 0; i < C; i++) out[r * C + i] = table.get(tokens[r]! * C + i);
        return;
      }
      case 'rmsnorm.forward':
      case 'rmsnorm.forwardToActivation':
      case 'rmsnorm.forwardToActivationFewRows':
      case 'rmsnorm.forwardKeepingInput':
      case 'rmsnorm.forwardToActivationKeepingInput': {
        const count = rows() * c('CHANNELS'), x = f32('x');
        const out = new Float32Array(count);
        rmsnormForward(out, f32('rstd'), x, f32('weight'), rows(), c('CHANNELS'), c('EPS'));
        if (entry.name.startsWith('forwardToActivation')) roundInto('out', out);
        else f32('out').set(out);
        if (entry.name.endsWith('KeepingInput')) roundInto('kept', x.subarray(0, count));
        return;
      }
      case 'rmsnorm.backward':
      case 'rmsnorm.backwardOverwrite':
      case 'rmsnorm.backwardFromActivation':
      case 'rmsnorm.backwardOverwriteFromActivation': {
        const count = rows() * c('CHANNELS');
        // Overwrite: dx is not read: 0 + the backward's term, whatever the buffer held.
        const dx = f32('dx').subarray(0, count);
        if (entry.name.startsWith('backwardOverwrite')) dx.fill(0);
        const x = entry.name.endsWith('FromActivation') ? widened('x', count) : f32('x');
        return rmsnormBackward(dx, f32('dy'), x, f32('weight'), f32('rstd'), rows(), c('CHANNELS'));
      }
      case 'convert.toActivation': {
        const out = sixteen('out'), source = f32('source'), columns = scalar('columns'), stride = scalar('stride');
        for (let r = 0; r < rows(); r++) for (let i = 0; i < stride; i++) out.set(r * stride + i, i < columns ? source[r * columns + i]! : 0);
        return;
      }
      case 'convert.copyActivation': {
        const raw = (name: string) => elementsOf(Uint16Array, bytes(name)!);
        const out = raw('out'), source = raw('source'), columns = uint32('columns'), stride = uint32('stride'), sourceStride = uint32('sourceStride');
        const offset = uint32('offset'), sourceOffset = uint32('sourceOffset');
        for (let r = 0; r < rows(); r++) for (let i = 0; i < columns; i++) out[offset + r * stride + i] = source[sourceOffset + r * sourceStride + i]!;
        return;
      }
      case 'convert.scaledToActivation': {
        // The kernel's float product, then its rounding to 16 bits.
        const out = sixteen('out'), source = f32('source'), columns = uint32('columns'), stride = uint32('stride'), offset = uint32('offset'), scale = Math.fround(scalar('scale'));
        for (let r = 0; r < rows(); r++) for (let i = 0; i < columns; i++) out.set(offset + r * stride + i, Math.fround(scale * source[r * columns + i]!));
        return;
      }
      case 'convert.fromActivation':
      case 'convert.accumulateFromActivation': {
        const out = f32('out'), source = sixteen('source'), columns = scalar('columns'), stride = scalar('stride'), offset = scalar('offset');
        const add = entry.name === 'accumulateFromActivation';
        for (let r = 0; r < rows(); r++) for (let i = 0; i < columns; i++) {
          const value = source.get(offset + r * stride + i);
          out[r * columns + i] = add ? out[r * columns + i]! + value : value;
        }
        return;
      }
      case 'rope.forward':
      case 'rope.backward': {
        const seqLen = scalar('seqLen'), tables = { headSize: c('HEAD_SIZE'), positions: f32('cos').length / c('PAIRS'), theta: 0, cos: f32('cos'), sin: f32('sin') };
        const x = f32(entry.name === 'forward' ? 'x' : 'dx').subarray(0, rows() * scalar('width'));
        return (entry.name === 'forward' ? ropeForward : ropeBackward)(x, tables, rows() / seqLen, seqLen, scalar('width'));
      }
      case 'rope.backwardToActivation': {
        const seqLen = scalar('seqLen'), tables = { headSize: c('HEAD_SIZE'), positions: f32('cos').length / c('PAIRS'), theta: 0, cos: f32('cos'), sin: f32('sin') };
        const turned = f32('dx').slice(0, rows() * scalar('width'));
        ropeBackward(turned, tables, rows() / seqLen, seqLen, scalar('width'));
        return roundInto('out', turned);
      }
      case 'rope.decodePairFromActivation': {
        // q and k: decodeFromActivation's role on each.
        const position = elementsOf(Uint32Array, bytes('step')!)[1]!, pairs = c('PAIRS');
        if ((position + 1) * pairs > f32('cos').length) throw new Error(`${fn.symbol}: position ${position} is past the tables`);
        const tables = { headSize: c('HEAD_SIZE'), positions: 1, theta: 0, cos: f32('cos').subarray(position * pairs, (position + 1) * pairs), sin: f32('sin').subarray(position * pairs, (position + 1) * pairs) };
        for (const [from, to, width] of [['x', 'out', scalar('width')], ['key', 'keyOut', scalar('keyWidth')]] as const) {
          const turned = widened(from, width);
          ropeForward(turned, tables, 1, 1, width);
          f32(to).set(turned);
        }
        return;
      }
      case 'rope.decodeForward':
      case 'rope.decodeFromActivation': {
        // One token at the step buffer's position: that row of the whole tables.
        const position = elementsOf(Uint32Array, bytes('step')!)[1]!, pairs = c('PAIRS'), width = scalar('width');
        if ((position + 1) * pairs > f32('cos').length) throw new Error(`${fn.symbol}: position ${position} is past the tables`);
        const tables = { headSize: c('HEAD_SIZE'), positions: 1, theta: 0, cos: f32('cos').subarray(position * pairs, (position + 1) * pairs), sin: f32('sin').subarray(position * pairs, (position + 1) * pairs) };
        const x = entry.name === 'decodeForward' ? f32('x').subarray(0, width) : widened('x', width);
        ropeForward(x, tables, 1, 1, width);
        if (entry.name === 'decodeFromActivation') f32('out').set(x);
        return;
      }
      case 'rope.forwardFromActivation': {
        const seqLen = scalar('seqLen'), tables = { headSize: c('HEAD_SIZE'), positions: f32('cos').length / c('PAIRS'), theta: 0, cos: f32('cos'), sin: f32('sin') };
        const x = widened('x', rows() * scalar('width'));
        ropeForward(x, tables, rows() / seqLen, seqLen, scalar('width'));
        return f32('out').set(x);
      }
      case 'rope.forwardInActivation': {
        const seqLen = scalar('seqLen'), tables = { headSize: c('HEAD_SIZE'), positions: f32('cos').length / c('PAIRS'), theta: 0, cos: f32('cos'), sin: f32('sin') };
        const x = widened('x', rows() * scalar('width'));
        ropeForward(x, tables, rows() / seqLen, seqLen, scalar('width'));
        return roundInto('x', x);
      }
      case 'decode_attention.append':
      case 'decode_attention.forward': {
        // The cache's layer count is the buffer's length over one layer's floats.
        const shape = { heads: c('HEADS'), kvHeads: c('KV_HEADS'), headSize: c('HEAD_SIZE'), capacity: scalar('capacity') };
        const cacheShape = { ...shape, layers: f32('keyCache').length / (shape.kvHeads * shape.capacity * shape.headSize) };
        const kvWidth = shape.kvHeads * shape.headSize, qWidth = shape.heads * shape.headSize;
        // The position from the step buffer, as the kernel reads it: uint32 [token, position].
        const position = elementsOf(Uint32Array, bytes('step')!)[1]!;
        if (entry.name === 'append') return appendKv(f32('keyCache'), f32('valueCache'), f32('k').subarray(0, kvWidth), f32('v').subarray(0, kvWidth), cacheShape, scalar('layer'), position);
        return decodeAttention(f32('out').subarray(0, qWidth), f32('q').subarray(0, qWidth), f32('keyCache'), f32('valueCache'), cacheShape, scalar('layer'), position + 1);
      }
      case 'attention.forward':
      case 'attention.backward_delta':
      case 'attention.backward_dq':
      case 'attention.backward_dkdv': {
        const batch = scalar('batch'), seqLen = scalar('seqLen');
        const shape = { batch, seqLen, heads: c('HEADS'), kvHeads: c('KV_HEADS'), headSize: c('HEAD_SIZE') };
        const tokens = batch * seqLen, qWidth = shape.heads * shape.headSize, kvWidth = shape.kvHeads * shape.headSize;
        // The bf16 form (IO_BF16) reads q, k, v, dOut and out as 16-bit rows, widened, and rounds out.
        const in16 = c('IO_BF16') === 1;
        const view = (name: string, width: number) => (in16 ? widened(name, tokens * width) : f32(name).subarray(0, tokens * width));
        if (entry.name === 'backward_delta') {
          const delta = f32('delta'), dOut = view('dOut', qWidth), out = view('out', qWidth);
          for (let b = 0; b < batch; b++) for (let h = 0; h < shape.heads; h++) for (let t = 0; t < seqLen; t++) {
            let sum = 0;
            for (let d = 0; d < shape.headSize; d++) sum += dOut[(b * seqLen + t) * qWidth + h * shape.headSize + d]! * out[(b * seqLen + t) * qWidth + h * shape.headSize + d]!;
            delta[(b * shape.heads + h) * seqLen + t] = sum;
          }
          return;
        }
        const q = view('q', qWidth), k = view('k', kvWidth), v = view('v', kvWidth);
        const probs = new Float32Array(batch * shape.heads * seqLen * seqLen), out = new Float32Array(tokens * qWidth);
        attentionForward(out, probs, q, k, v, shape);
        if (entry.name === 'forward') {
          if (in16) roundInto('out', out);
          else f32('out').set(out);
          // lse from the scores the probabilities came from: log Σ exp(s) = s_0 − log p_0 (position 0 is always seen).
          const lse = f32('lse'), scale = 1 / Math.sqrt(shape.headSize), group = shape.heads / shape.kvHeads;
          for (let b = 0; b < batch; b++) for (let h = 0; h < shape.heads; h++) for (let t = 0; t < seqLen; t++) {
            let s0 = 0;
            for (let d = 0; d < shape.headSize; d++) s0 += q[(b * seqLen + t) * qWidth + h * shape.headSize + d]! * k[(b * seqLen) * kvWidth + Math.floor(h / group) * shape.headSize + d]!;
            lse[(b * shape.heads + h) * seqLen + t] = s0 * scale - Math.log(probs[((b * shape.heads + h) * seqLen + t) * seqLen]!);
          }
          return;
        }
        const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
        attentionBackward(dq, dk, dv, view('dOut', qWidth), q, k, v, out, probs, shape);
        const add = (name: string, from: Float32Array) => {
          const to = f32(name);
          for (let i = 0; i < from.length; i++) to[i] += from[i]!;
        };
        if (entry.name === 'backward_dq') add('dq', dq);
        else {
          add('dk', dk);
          add('dv', dv);
        }
        return;
      }
      case 'residual.add': {
        const out = f32('out'), a = f32('a'), b = f32('b');
        for (let i = 0; i < scalar('count'); i++) out[i] = a[i]! + b[i]!;
        return;
      }
      case 'residual.addFromActivation': {
        const out = f32('out'), a = f32('a'), b = widened('b', scalar('count'));
        for (let i = 0; i < scalar('count'); i++) out[i] = a[i]! + b[i]!;
        return;
      }
      case 'residual.zero':
        return void f32('x').fill(0, 0, scalar('count'));
      case 'residual.accumulate': {
        const out = f32('out'), source = f32('source'), offset = scalar('offset');
        for (let i = 0; i < scalar('count'); i++) out[i] += source[offset + i]!;
        return;
      }
      case 'dropout.multipliers': {
        // From the description's arguments alone, with the integer comparison the kernel makes.
        const out = f32('multiplier'), multiplier = maskOf();
        for (let i = 0; i < uint32('count'); i++) out[i] = multiplier(i);
        return;
      }
      case 'unpool.accumulate':
      case 'unpool.overwrite': {
        // Thread by thread over the launch's grid, as the kernel indexes (a row a block.x, four
        // columns a thread): a grid that misses columns leaves them unchanged here too. overwrite
        // does not read dx (0 + the term).
        const before = entry.name === 'overwrite' ? () => 0 : (i: number) => out[i]!;
        const out = f32('inputGrad'), du = sixteen('pooledInputGrad'), factor = Math.fround(scalar('factor'));
        const columns = scalar('columns'), groupSize = scalar('groupSize'), stride = scalar('stride'), perThread = c('COLUMNS_PER_THREAD');
        const groups = Math.ceil(columns / groupSize), multiplier = maskOf();
        if (groups > stride) throw new Error(`${fn.symbol}: ${groups} groups in du rows of ${stride}`);
        for (let row = 0; row < Math.min(grid[0]!, rows()); row++) {
          for (let thread = 0; thread < grid[1]! * block[0]!; thread++) {
            for (let i = thread * perThread; i < Math.min((thread + 1) * perThread, columns); i++) {
              const group = Math.floor(i / groupSize);
              const dropped = Math.fround(multiplier(row * groups + group) * du.get(row * stride + group));
              out[row * columns + i] = Math.fround(before(row * columns + i) + Math.fround(factor * dropped));
            }
          }
        }
        return;
      }
      case 'unpool.dropPooled': {
        const out = sixteen('dropped'), u = sixteen('pooledInput'), multiplier = maskOf();
        const groups = scalar('groups'), stride = scalar('stride');
        if (groups > stride) throw new Error(`${fn.symbol}: ${groups} groups in u rows of ${stride}`);
        for (let i = 0; i < Math.min(grid[0]! * block[0]!, rows() * groups); i++) {
          const row = Math.floor(i / groups), group = i % groups;
          out.set(i, Math.fround(multiplier(i) * u.get(row * stride + group)));
        }
        return;
      }
      case 'swiglu.forward':
        return swigluForward(f32('out'), f32('gate'), f32('up'), scalar('count'));
      case 'swiglu.backward':
        return swigluBackward(f32('dGate'), f32('dUp'), f32('dOut'), f32('gate'), f32('up'), scalar('count'));
      case 'swiglu.forwardInActivation': {
        const out = new Float32Array(scalar('count'));
        swigluForward(out, widened('gate', scalar('count')), widened('up', scalar('count')), scalar('count'));
        return roundInto('out', out);
      }
      case 'swiglu.backwardFromActivation':
        return swigluBackward(f32('dGate'), f32('dUp'), f32('dOut'), widened('gate', scalar('count')), widened('up', scalar('count')), scalar('count'));
      case 'swiglu.backwardToActivation': {
        // 0 + the backward's terms, rounded once.
        const count = scalar('count'), dGate = new Float32Array(count), dUp = new Float32Array(count);
        swigluBackward(dGate, dUp, f32('dOut'), widened('gate', count), widened('up', count), count);
        roundInto('dGate', dGate);
        return roundInto('dUp', dUp);
      }
      case 'lm_head.forward':
        return lmHeadForward(f32('logits').subarray(0, rows() * c('VOCAB')), f32('x'), f32('classifier'), rows(), c('CHANNELS'), c('VOCAB'));
      case 'lm_head.backward':
        return lmHeadBackward(f32('dx').subarray(0, rows() * c('CHANNELS')), f32('dLogits'), f32('classifier'), rows(), c('CHANNELS'), c('VOCAB'));
      case 'cross_entropy.forward': {
        const probs = f32('probs'), rowLoss = f32('rowLoss'), logits = f32('logits'), V = c('VOCAB'), targets = i32('targets');
        for (let r = 0; r < rows(); r++) {
          let max = -Infinity, sum = 0;
          for (let j = 0; j < V; j++) max = Math.max(max, logits[r * V + j]!);
          for (let j = 0; j < V; j++) sum += Math.exp(logits[r * V + j]! - max);
          for (let j = 0; j < V; j++) probs[r * V + j] = Math.exp(logits[r * V + j]! - max) / sum;
          rowLoss[r] = targets[r]! >= 0 ? max + Math.log(sum) - logits[r * V + targets[r]!]! : 0;
        }
        return;
      }
      case 'cross_entropy.chunkLoss':
      case 'cross_entropy.chunkGradient':
      case 'cross_entropy.chunkGradientToActivation': {
        // The chunk's rows are the call's rows firstRow …; a row's gradient as the kernel computes it, in float32.
        const logits = f32('logits'), rowLoss = f32('rowLoss'), targets = i32('targets'), maskBytes = bytes('mask'), V = c('VOCAB'), first = scalar('firstRow');
        const gradient = entry.name === 'chunkGradient' ? { set: (i: number, v: number) => { logits[i] = v; } } : entry.name === 'chunkGradientToActivation' ? sixteen('dLogits') : undefined;
        const scale = gradient !== undefined ? Math.fround(scalar('scale')) : 0;
        for (let r = 0; r < rows(); r++) {
          const row = first + r, base = r * V, rowCounts = counted(targets, maskBytes, row), target = targets[row]!;
          let max = -Infinity, sum = 0;
          for (let j = 0; j < V; j++) max = Math.max(max, logits[base + j]!);
          for (let j = 0; j < V; j++) sum += Math.exp(logits[base + j]! - max);
          rowLoss[row] = rowCounts ? max + Math.log(sum) - logits[base + target]! : 0;
          if (gradient === undefined) continue;
          for (let j = 0; j < V; j++) {
            const probability = Math.fround(Math.exp(logits[base + j]! - max) / sum);
            gradient.set(base + j, rowCounts ? Math.fround(scale * probability) - (j === target ? scale : 0) : 0);
          }
        }
        return;
      }
      case 'cross_entropy.loss': {
        const out = f32('lossAndCount'), rowLoss = f32('rowLoss'), targets = i32('targets'), maskBytes = bytes('mask');
        let total = 0, n = 0;
        for (let r = 0; r < rows(); r++) if (counted(targets, maskBytes, r)) { total += rowLoss[r]!; n++; }
        out[0] = total;
        out[1] = n;
        return;
      }
      case 'cross_entropy.backward': {
        const dLogits = f32('dLogits'), probs = f32('probs'), targets = i32('targets'), maskBytes = bytes('mask'), V = c('VOCAB');
        const n = f32('lossAndCount')[1]!;
        if (n === 0) return;
        const scale = scalar('dLoss') / n;
        for (let r = 0; r < rows(); r++) {
          if (!counted(targets, maskBytes, r)) continue;
          for (let j = 0; j < V; j++) dLogits[r * V + j] += scale * probs[r * V + j]!;
          dLogits[r * V + targets[r]!] -= scale;
        }
        return;
      }
      case 'sum_squares.partials': {
        const partials = f32('partials'), x = f32('x');
        partials.fill(0, 0, c('BLOCKS'));
        for (let i = 0; i < scalar('count'); i++) partials[0] += x[i]! * x[i]!;
        return;
      }
      case 'sum_squares.finish': {
        const partials = f32('partials');
        let sum = 0;
        for (let b = 0; b < c('BLOCKS'); b++) sum += partials[b]!;
        f32('sum')[0] += sum;
        return;
      }
      case 'adamw.step': {
        const value = f32('value'), grad = f32('grad'), m = f32('m'), v = f32('v'), sumSquares = bytes('sumSquares');
        const lr = scalar('lr'), beta1 = scalar('beta1'), beta2 = scalar('beta2'), eps = scalar('eps'), step = scalar('step');
        const clip = sumSquares === undefined ? 1 : Math.min(1, scalar('maxGradNorm') / (Math.sqrt(elementsOf(Float32Array, sumSquares)[0]!) + 1e-6));
        const c1 = 1 - beta1 ** step, c2 = 1 - beta2 ** step, decay = 1 - lr * scalar('weightDecay');
        for (let i = 0; i < scalar('count'); i++) {
          const g = grad[i]! * clip;
          m[i] = beta1 * m[i]! + (1 - beta1) * g;
          v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
          value[i] = value[i]! * decay - lr * (m[i]! / c1) / (Math.sqrt(v[i]! / c2) + eps);
        }
        return;
      }
      default:
        throw new Error(`the simulated device has no model op ${kernel.op}.${entry.name}`);
    }
  }
}
