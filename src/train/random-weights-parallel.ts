// quantizeAsDrawn's work spread over worker threads: every quantized projection of the model is
// sent to a worker (random-weights-worker.ts) at once, in the order randomWeights asks for them,
// and the hook hands randomWeights each one as it is ready, waiting (Atomics.wait) when it is
// not yet, so setUpTraining stays synchronous. Each tensor draws from its own stream, so the
// weights are the same as quantizeAsDrawn's. The worker is a file of the bundled `qalc` command
// (src/cli/bundle.mjs); run from the TypeScript sources (tests, tsx) there is none and the
// caller draws on its own thread.
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

type Answer = { readonly id: number; readonly weight?: QuantizedWeight; readonly error?: { readonly name: string; readonly message: string } };

export interface WorkerQuantizer {
  readonly quantize: RandomProjectionQuantizer;
  readonly threads: number;
  /** Ends the workers; call it whether randomWeights finished or threw. */
  close(): void;
}

/**
 * quantizeAsDrawn(spec) for randomWeights(arch, seed, …) on `threads` workers, or undefined
 * where there is no worker file (or fewer than 2 threads would run).
 */
export function quantizeInWorkers(arch: Architecture, seed: number, spec: QaLoraSpec, threads = Math.min(availableParallelism(), 16)): WorkerQuantizer | undefined {
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
  // randomLayerWeights' order, so that answers come about when they are asked for.
  const order: RandomProjection[] = ['q', 'k', 'v', 'o', 'gate', 'down', 'up'];
  for (let l = 0; l < arch.layers; l++) {
    for (const p of order) {
      if (spec[l]![p].bits === null) continue;
      const { outFeatures, inFeatures } = projectionShape(arch, p);
      const job: ProjectionJob = { id: ids.size, seed, l, p, outFeatures, inFeatures, spec: spec[l]![p] };
      ports[job.id % threads]!.postMessage(job);
      ids.set(`${l}.${p}`, job.id);
    }
  }
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
    threads,
    quantize: (l, p) => {
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
      if (answer.error) throw answer.error.name === 'ScaleRangeError' ? new ScaleRangeError(answer.error.message) : new Error(`layers.${l}.${RANDOM_TENSOR_NAMES[p]}: ${answer.error.message}`);
      return answer.weight!;
    },
    close() {
      for (const port of ports) port.close();
      for (const worker of workers) void worker.terminate();
    },
  };
}
