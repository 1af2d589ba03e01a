// Rotary position embedding on CUDA, in place (src/runtime/typescript/rope.ts, llama2.c's
// pairing: consecutive elements (2p, 2p+1) of each head turn by the angle of (position, p)).
// One thread per pair; the token of row r sits at position r % seqLen. The cos/sin tables come
// from the host (ropeTables: run.c's float32 rounding, the model's θ), [positions, headSize/2].
// q and k come from their linears: forwardFromActivation reads them in the activation type the
// linear wrote (widened exactly) and writes the float32 rows attention's float32 form reads, and
// forwardInActivation turns them in place in that type for its bf16 form, so no conversion runs;
// backwardToActivation reads attention's float32 dq or dk and writes the turned gradient in the
// activation type the q or k linear's backward reads (rounded as the conversion would round it).
// The decode entries turn one token (q or k of `qalc generate`'s step) at the position the decode
// step's buffer holds (`step`, written by the host before the step: shapes.ts), over the whole
// table, so that the step's launches are the same every token (its CUDA graph: device-decode.ts).
import type { ModelOpKernel, ModelOpParameter } from '../model-ops.ts';
import { activationType, activationInput, activationOutput, decodeStepInput, elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, input, output, u32, type ModelShapes } from './shapes.ts';

export function ropeKernel(shapes: ModelShapes): ModelOpKernel {
  const { headSize, activation } = shapes;
  const kernel = `rope_d${headSize}_${activation}`;
  const type = activationType('rope', shapes);
  const pairs = headSize / 2;
  const parameters = (...pointers: ModelOpParameter[]) => [
    ...pointers,
    input('cos', `[positions, ${pairs}]`), input('sin', `[positions, ${pairs}]`),
    u32('rows', 'batch * seqLen'), u32('seqLen', 'tokens per sequence (<= the tables\' positions, checked by the host)'),
    u32('width', `heads * ${headSize} (q) or kvHeads * ${headSize} (k); a multiple of ${headSize}`),
  ];
  const grid = elementwiseGrid('rows * width / 2');
  const block = [ELEMENTWISE_THREADS, 1, 1] as const;
  const turn = `pair p = (i % ${headSize}) / 2 of token t = r % seqLen, c = cos[t, p], s = sin[t, p]`;
  const decodeParameters = (...pointers: ModelOpParameter[]) => [
    ...pointers,
    input('cos', `[positions, ${pairs}]`), input('sin', `[positions, ${pairs}]`), decodeStepInput(),
    u32('width', `heads * ${headSize} (q) or kvHeads * ${headSize} (k); a multiple of ${headSize}`),
  ];
  const decodeGrid = elementwiseGrid('width / 2');
  const decodeTurn = `one token at t = step[1] (< the tables' positions, checked by the host): pair p = (i % ${headSize}) / 2, c = cos[t, p], s = sin[t, p]`;
  return {
    kernel, op: 'rope', template: 'ops/rope.cu.hbs',
    constants: { HEAD_SIZE: headSize, PAIRS: pairs, THREADS: ELEMENTWISE_THREADS },
    entryPoints: [
      entryPoint(kernel, 'forward', { parameters: parameters(output('x', '[rows, width], in place')), block, grid, computes: `${turn}: (x0, x1) <- (x0 c - x1 s, x0 s + x1 c)` }),
      entryPoint(kernel, 'forwardFromActivation', {
        parameters: parameters(output('out', '[rows, width]'), activationInput(type, 'x', '[rows, width]')), block, grid, computes: `${turn}: (out0, out1) = (x0 c - x1 s, x0 s + x1 c)`,
      }),
      entryPoint(kernel, 'forwardInActivation', {
        parameters: parameters(activationOutput(type, 'x', '[rows, width], in place')), block, grid, computes: `${turn}: (x0, x1) <- (x0 c - x1 s, x0 s + x1 c)`,
      }),
      entryPoint(kernel, 'decodeForward', { parameters: decodeParameters(output('x', '[width], in place')), block, grid: decodeGrid, computes: `${decodeTurn}: (x0, x1) <- (x0 c - x1 s, x0 s + x1 c)` }),
      entryPoint(kernel, 'decodeFromActivation', {
        parameters: decodeParameters(output('out', '[width]'), activationInput(type, 'x', '[width]')), block, grid: decodeGrid, computes: `${decodeTurn}: (out0, out1) = (x0 c - x1 s, x0 s + x1 c)`,
      }),
      entryPoint(kernel, 'backward', { parameters: parameters(output('dx', '[rows, width], in place')), block, grid, computes: `${turn}: (d0, d1) <- (d0 c + d1 s, -d0 s + d1 c), the transposed turn` }),
      entryPoint(kernel, 'backwardToActivation', {
        parameters: parameters(activationOutput(type, 'out', '[rows, width]'), input('dx', '[rows, width]')), block, grid, computes: `${turn}: (out0, out1) = (d0 c + d1 s, -d0 s + d1 c), the transposed turn`,
      }),
      // q and k of the decode step in one launch (generation's step: one launch fewer a block).
      entryPoint(kernel, 'decodePairFromActivation', {
        parameters: [
          output('out', '[width]: q turned'), activationInput(type, 'x', '[width]: q'), output('keyOut', '[keyWidth]: k turned'), activationInput(type, 'key', '[keyWidth]: k'),
          input('cos', `[positions, ${pairs}]`), input('sin', `[positions, ${pairs}]`), decodeStepInput(),
          u32('width', `heads * ${headSize}`), u32('keyWidth', `kvHeads * ${headSize}`),
        ],
        block, grid: elementwiseGrid('(width + keyWidth) / 2'),
        computes: `${decodeTurn}, pairs of x then of key: (out0, out1) = (x0 c - x1 s, x0 s + x1 c), (keyOut0, keyOut1) the same of key`,
      }),
    ],
  };
}
