// The training step's backward as a CUDA graph (issue 11): about half of a step's device calls
// (144 of ~260 at the 7B shape's 2 blocks) launched by one graph launch, so that the GPU never
// waits on the host between them.
//
// Why the backward and not the whole step: everything a graph replays must be the same every
// step, pointers and scalars alike, and only the backward is that as the code stands. The
// forward uploads the token ids and targets into pooled temporaries, the fused lm_head's
// `scale = dLoss / counted` follows the batch's loss mask and its loss comes down with a sync;
// AdamW's lr and step are launch parameters and the gradient norm comes down before it. The
// backward reads none of these; adapter dropout's seed, which changes every step, is a device
// word the forward rewrites (dropout-seed.ts), so a run with dropout settles too.
//
// How it stays right: the port under the device ops (stepGraphPort) writes down every device
// call of a backward — kernel, grid, parameters, GEMM operands, fills, copies — and every call a
// graph cannot hold (host↔device copies, allocations, frees, waits). Once two backwards in a row
// made the same calls and none of those (the residency and the pool at a fixed point), the next
// is captured. A replay launches the graph, then runs the model's backward code with the port
// dropping its calls — so the arrays' bookkeeping advances as a launched backward's does —
// while it checks each against the captured one: a call that differs throws (the graph has run
// the old one), so what changes the state between steps (an evaluation, a checkpoint's sync)
// drops the graph first (unsettle) and the backward is traced and captured again.
import type { CudaDevicePort, CudaFunction, DeviceBuffer, DeviceGraph, DeviceMatrix, Dim3, GemmCall, KernelParameter } from './cuda.ts';

/** How the training steps' backwards ran, for the train summary's line. */
export type StepGraphState =
  | { readonly mode: 'graph'; readonly nodes: number; readonly capturedAt: number; readonly captures: number; readonly replays: number; readonly droppedBy?: string }
  | { readonly mode: 'launches'; readonly why: string };

/** What the trainer sees: the backward run through the graph where it can. */
export interface TrainingStepGraph {
  /** Runs `body` (one step's backward, `step` counted from 1): launched (and traced), captured, or replayed and checked; says which. */
  backward(step: number, body: () => Promise<void>): Promise<BackwardRun>;
  /** The state between steps changed (`why`: "the evaluation at step 4"): drop the graph, trace the next backwards again. */
  unsettle(why: string): void;
  /** This run's backwards are never captured, because `why`. */
  never(why: string): void;
  state(): StepGraphState;
}

/** How one backward ran: train.jsonl's `backward`, so that a bench can take the replayed steps' times apart. */
export type BackwardRun = 'launched' | 'traced' | 'captured' | 'replayed';

type Mode = 'launch' | 'trace' | 'verify';

/** A backward's device calls, in order, and the first call a graph could not hold. */
interface Trace {
  readonly calls: string[];
  hostCall?: string;
}

const dims = (d: Dim3) => d.join('x');
const parameterText = (p: KernelParameter) => `${p.kind[0]}${p.value}`;
const matrixText = (m: DeviceMatrix) => `${m.buffer.pointer + BigInt(m.offset ?? 0)}:${m.type}:${m.rows}x${m.columns}/${m.ld ?? m.columns}`;
const gemmText = (c: GemmCall) => `gemm ${matrixText(c.a)}${c.transposeA ? 'T' : ''} ${matrixText(c.b)}${c.transposeB ? 'T' : ''} ${matrixText(c.out)} ${c.alpha ?? 1} ${c.beta ?? 0}`;

/**
 * `port` with the step graph's bookkeeping: launched as it is, but while a backward is traced
 * every call is written down, and while one is replayed every call is checked and dropped.
 * `offBecause`: why the backward is never captured (QALC_CUDA_GRAPH=0, a profile), said in the line.
 */
export function stepGraphPort(port: CudaDevicePort, offBecause?: string): { readonly port: CudaDevicePort; readonly graph: TrainingStepGraph } {
  const graphs = port.graphs;
  let mode: Mode = 'launch';
  let trace: Trace = { calls: [] };
  /** The captured backward's calls, checked call by call in a replay. */
  let expected: readonly string[] = [];
  let checked = 0;

  /** A device call: launched (and traced), or, in a replay, checked against the captured one and dropped. */
  const call = (text: () => string, run: () => void) => {
    if (mode === 'verify') {
      const made = text();
      const wanted = expected[checked];
      if (made !== wanted) throw new Error(`a replayed backward made another device call than the captured one at call ${checked + 1}: ${made} (captured: ${wanted ?? 'none'}); the graph ran the captured one`);
      checked++;
      return;
    }
    if (mode === 'trace') trace.calls.push(text());
    run();
  };
  /** A call a graph cannot hold: noted while tracing, refused in a replay. */
  const hostCall = (what: string) => {
    if (mode === 'verify') throw new Error(`a replayed backward made ${what}, which the captured one did not`);
    if (mode === 'trace') trace.hostCall ??= what;
  };

  const wrap = (buffer: DeviceBuffer): DeviceBuffer => ({
    get pointer() { return buffer.pointer; },
    get bytes() { return buffer.bytes; },
    upload: (source) => (hostCall(`a host→device copy of ${source.byteLength} bytes`), buffer.upload(source)),
    download: (destination) => (hostCall(`a device→host copy of ${destination.byteLength} bytes`), buffer.download(destination)),
    fill: (byte, bytes) => call(() => `fill ${buffer.pointer} ${byte} ${bytes ?? buffer.bytes}`, () => buffer.fill(byte, bytes)),
    copyFrom: (source, bytes, offset) => call(() => `copy ${buffer.pointer}+${offset ?? 0} ${source.pointer} ${bytes}`, () => buffer.copyFrom(source, bytes, offset)),
    view: (offset, bytes) => wrap(buffer.view(offset, bytes)),
    free: () => (hostCall('a free'), buffer.free()),
  });

  const gemm = port.gemm;
  const wrapped: CudaDevicePort = {
    loadModule: (image) => port.loadModule(image),
    alloc: (bytes) => (hostCall(`an allocation of ${bytes} bytes`), wrap(port.alloc(bytes))),
    launch: (fn: CudaFunction, grid, block, sharedBytes, parameters) =>
      call(() => `${fn.symbol}#${fn.handle} ${dims(grid)} ${dims(block)} ${sharedBytes} ${parameters.map(parameterText).join(',')}`, () => port.launch(fn, grid, block, sharedBytes, parameters)),
    synchronize: () => (hostCall('a wait for the device'), port.synchronize()),
    ...(gemm === undefined ? {} : { gemm: (c: GemmCall) => call(() => gemmText(c), () => gemm(c)) }),
    ...(port.events === undefined ? {} : { events: port.events }),
    ...(graphs === undefined ? {} : { graphs }),
  };

  let graph: DeviceGraph | undefined;
  let nodes = 0, capturedAt = 0, captures = 0, replays = 0;
  /** What dropped the last graph: the line names it. */
  let droppedBy: string | undefined;
  /** The last traced backward's calls, and how many traced backwards in a row made them with no host call. */
  let previous: readonly string[] | undefined;
  let settled = 0;
  /** Traced backwards in a row whose calls differed from the one before. */
  let differences = 0;
  let off = offBecause;
  let why = off ?? 'no training step has run';

  const traced = async (body: () => Promise<void>): Promise<Trace> => {
    trace = { calls: [] };
    mode = 'trace';
    try {
      await body();
    } finally {
      mode = 'launch';
    }
    return trace;
  };
  /** Where two backwards' calls first differ (-1: nowhere). */
  const firstDifference = (a: readonly string[], b: readonly string[]) => {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
    return -1;
  };

  const replay = async (body: () => Promise<void>) => {
    graph!.launch();
    checked = 0;
    mode = 'verify';
    try {
      await body();
    } finally {
      mode = 'launch';
    }
    if (checked !== expected.length) throw new Error(`a replayed backward made ${checked} device calls, the captured one ${expected.length}; the graph ran the captured ones`);
    replays++;
  };

  const capture = async (step: number, body: () => Promise<void>) => {
    graphs!.begin();
    let captured: Trace;
    try {
      captured = await traced(body);
    } catch (error) {
      graphs!.abort();
      throw error;
    }
    const made = graphs!.end();
    // What the model asked of this step, recorded and not run: run it.
    made.launch();
    if (captured.hostCall === undefined && firstDifference(captured.calls, previous!) < 0) {
      graph = made;
      expected = captured.calls;
      nodes = made.nodes;
      capturedAt = step;
      captures++;
    } else {
      made.destroy();
      settled = 0;
      why = `the captured backward of step ${step} differed from the two traced before it`;
    }
  };

  const notYet = (step: number) => `not captured: ${step} steps ran, and the backward is captured after two in a row that made the same device calls and no host call`;
  const traceOne = async (step: number, body: () => Promise<void>) => {
    const now = await traced(body);
    const at = previous === undefined ? 0 : firstDifference(previous, now.calls);
    if (now.hostCall !== undefined) {
      settled = 0;
      why = `the backward of step ${step} made ${now.hostCall}`;
    } else if (at < 0) {
      settled++;
      why = notYet(step);
    } else {
      settled = 1;
      const differing = (now.calls[at] ?? 'none').split(' ')[0]!;
      if (previous !== undefined) {
        why = `the backward's device calls differ from step to step (step ${step}, call ${at + 1}: ${differing})`;
        // Three changes in a row: they change every step; tracing them costs host time for nothing.
        if (++differences >= 3) off = why;
      } else {
        why = notYet(step);
      }
    }
    if (at < 0 || previous === undefined) differences = 0;
    previous = now.calls;
  };

  const control: TrainingStepGraph = {
    async backward(step, body) {
      if (off !== undefined || graphs === undefined) {
        if (off === undefined) why = 'the device has no CUDA graphs';
        await body();
        return 'launched';
      }
      if (graph !== undefined) {
        await replay(body);
        return 'replayed';
      }
      if (settled >= 2) {
        await capture(step, body);
        return graph !== undefined ? 'captured' : 'traced';
      }
      await traceOne(step, body);
      return 'traced';
    },
    unsettle(reason) {
      if (graph !== undefined) droppedBy = reason;
      graph?.destroy();
      graph = undefined;
      previous = undefined;
      settled = 0;
      differences = 0;
    },
    never(reason) {
      control.unsettle(reason);
      off = why = reason;
    },
    state() {
      if (captures > 0) return { mode: 'graph', nodes, capturedAt, captures, replays, ...(droppedBy !== undefined && captures > 1 ? { droppedBy } : {}) };
      return { mode: 'launches', why };
    },
  };
  return { port: wrapped, graph: control };
}

/** The train summary's line: what the steps' backwards ran as. */
export function describeStepGraph(state: StepGraphState): string {
  return state.mode === 'graph'
    ? `train step: the backward as a CUDA graph of ${state.nodes} device calls, captured at step ${state.capturedAt}${state.captures > 1 ? ` (captured ${state.captures} times, again after each evaluation or checkpoint; the last dropped by ${state.droppedBy})` : ''} and replayed ${state.replays} times; ` +
      'the forward (token ids and targets go up, the loss comes down) and AdamW (lr and step are launch parameters) launched op by op (QALC_CUDA_GRAPH=0 launches the backward too)'
    : `train step: every op launched from the host (no CUDA graph: ${state.why})`;
}
