// quantizeAsDrawn's work spread over worker threads: every quantized projection of the model is
// sent to a worker (random-weights-worker.ts) at once, in the order randomWeights asks for them,
// and the hook hands randomWeights each one as it is ready, waiting (Atomics.wait) when it is
// not yet, so setUpTraining stays synchronous. Each tensor draws from its own stream, so the
// weights are the same as quantizeAsDrawn's. The worker is a file of the bundled `qalc` command
// (src/cli/bundle.mjs); run from the TypeScript sources (tests, tsx) there is none and the
// caller draws on its own thread. For a device that quantizes (the cuda backend), the workers
// only draw (drawInWorkers): the floats go up one projection at a time, a few drawn ahead.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Architecture } from '../model/architecture.ts';
import { RANDOM_TENSOR_NAMES, type RandomProjection, type RandomProjectionQuantizer } from '../model/random-weights.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { ScaleRangeError } from '../quant/scale-dtype.ts';
import { projectionShape, type QaLoraSpec } from './qalora-spec.ts';
import type { ProjectionJob } from './random-weights-worker.ts';

const WORKER = new URL('./random-weights-worker.js', import.meta.url);

/** No answer from any worker for this long: one has died. */
const STALL_MS = 10 * 60_000;

type Answer = { readonly id: number; readonly weight?: QuantizedWeight; readonly floats?: Float32Array; readonly error?: { readonly name: string; readonly message: string } };

export interface WorkerQuantizer {
  readonly quantize: RandomProjectionQuantizer;
  readonly threads: number;
  /** Ends the workers; call it whether randomWeights finished or threw. */
  close(): void;
}

/** The drawing alone on the workers, for a device that quantizes (drawnOnDevice in device-random-weights.ts). */
export interface WorkerDraws {
  /** Projection p of block l drawn whole, [out, in]; undefined where the spec keeps it in float (bits = null). */
  draw(l: number, p: RandomProjection): Float32Array | undefined;
  readonly threads: number;
  close(): void;
}

/**
 * quantizeAsDrawn(spec) for randomWeights(arch, seed, …) on `threads` workers, or undefined
 * where there is no worker file (or fewer than 2 threads would run).
 */
export function quantizeInWorkers(arch: Architecture, seed: number, spec: QaLoraSpec, threads = defaultThreads()): WorkerQuantizer | undefined {
  const pool = workerPool(arch, seed, spec, threads, false);
  if (pool === undefined) return undefined;
  return { threads, close: pool.close, quantize: (l, p) => pool.answer(l, p)?.weight! };
}

/**
 * Every quantized projection drawn whole on `threads` workers (no RTN), for a device that
 * quantizes; undefined as quantizeInWorkers. At most two projections a worker are drawn ahead
 * of the one asked for, so the floats of the whole model are never held at once.
 */
export function drawInWorkers(arch: Architecture, seed: number, spec: QaLoraSpec, threads = defaultThreads()): WorkerDraws | undefined {
  const pool = workerPool(arch, seed, spec, threads, true);
  if (pool === undefined) return undefined;
  return { threads, close: pool.close, draw: (l, p) => pool.answer(l, p)?.floats! };
}

const defaultThreads = () => Math.min(availableParallelism(), 16);

/** The workers' answer for each projection, waited for in order; undefined for one kept in float. */
function workerPool(arch: Architecture, seed: number, spec: QaLoraSpec, threads: number, draw: boolean): { answer(l: number, p: RandomProjection): Answer | undefined; close(): void } | undefined {
  if (threads < 2 || WORKER.protocol !== 'file:' || !existsSync(fileURLToPath(WORKER))) return undefined;
  const done = new Int32Array(new SharedArrayBuffer(4));
  const ports: MessagePort[] = [];
  const workers: Worker[] = [];
  for (let w = 0; w < threads; w++) {
    const { port1, port2 } = new MessageChannel();
    workers.push(new Worker(WORKER, { workerData: { port: port2, done }, transferList: [port2] }));
    ports.push(port1);
  }
  const ids = new Map<string, number>();
  const jobs: ProjectionJob[] = [];
  // randomLayerWeights' order, so that answers come about when they are asked for.
  const order: RandomProjection[] = ['q', 'k', 'v', 'o', 'gate', 'down', 'up'];
  for (let l = 0; l < arch.layers; l++) {
    for (const p of order) {
      if (spec[l]![p].bits === null) continue;
      const { outFeatures, inFeatures } = projectionShape(arch, p);
      ids.set(`${l}.${p}`, jobs.length);
      jobs.push({ id: jobs.length, seed, l, p, outFeatures, inFeatures, spec: spec[l]![p], ...(draw ? { draw } : {}) });
    }
  }
  // Quantized answers are small (a byte a weight): every job is sent at once. Floats are four
  // bytes a weight: a window of two a worker, the next one sent as each is taken (same worker).
  const window = draw ? 2 * threads : jobs.length;
  const send = (id: number) => {
    if (id < jobs.length) ports[id % threads]!.postMessage(jobs[id]!);
  };
  for (let id = 0; id < window; id++) send(id);
  const answers = new Map<number, Answer>();
  const drain = (): boolean => {
    let any = false;
    for (const port of ports) {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        answers.set((m.message as Answer).id, m.message as Answer);
        any = true;
      }
    }
    return any;
  };
  return {
    answer: (l, p) => {
      const id = ids.get(`${l}.${p}`);
      if (id === undefined) return undefined; // bits = null: kept in float
      // A worker that died (out of memory) never answers, and its exit event cannot reach this
      // blocked thread: a projection takes seconds, so minutes without any answer is an error.
      let waitingSince = Date.now();
      while (!answers.has(id)) {
        const seen = Atomics.load(done, 0);
        if (drain()) waitingSince = Date.now();
        else if (Atomics.wait(done, 0, seen, 1000) === 'timed-out' && Date.now() - waitingSince > STALL_MS) {
          throw new Error(`random weights: no worker has answered for ${STALL_MS / 60000} minutes (layers.${l}.${RANDOM_TENSOR_NAMES[p]} awaited): a worker thread has died`);
        }
      }
      const answer = answers.get(id)!;
      answers.delete(id);
      if (window < jobs.length) send(id + window);
      if (answer.error) throw answer.error.name === 'ScaleRangeError' ? new ScaleRangeError(answer.error.message) : new Error(`layers.${l}.${RANDOM_TENSOR_NAMES[p]}: ${answer.error.message}`);
      return answer;
    },
    close() {
      for (const port of ports) port.close();
      for (const worker of workers) void worker.terminate();
    },
  };
}
