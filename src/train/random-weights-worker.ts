// A worker of randomWeightsInParallel (random-weights-parallel.ts): draws and quantizes the
// projections it is sent, one message each, and answers with the quantized weight (its arrays
// transferred, not copied), or the error, then bumps the shared counter the main thread waits on.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { randomMatrixRows, RANDOM_TENSOR_NAMES, type RandomProjection } from '../model/random-weights.ts';
import type { ProjectionSpec } from './qalora-spec.ts';
import { quantizeProjection } from './quantize-projection.ts';

export interface ProjectionJob {
  readonly id: number;
  readonly seed: number;
  readonly l: number;
  readonly p: RandomProjection;
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly spec: ProjectionSpec;
}

if (parentPort) {
  const { port, done } = workerData as { port: MessagePort; done: Int32Array };
  port.on('message', (job: ProjectionJob) => {
    try {
      const rows = randomMatrixRows(job.seed, `layers.${job.l}.${RANDOM_TENSOR_NAMES[job.p]}`, job.inFeatures);
      const weight = quantizeProjection(`layers.${job.l}.${job.p}`, job.outFeatures, job.inFeatures, job.spec, rows);
      port.postMessage({ id: job.id, weight }, [weight.q.buffer, weight.scales.buffer, weight.zeros.buffer] as ArrayBuffer[]);
    } catch (error) {
      port.postMessage({ id: job.id, error: { name: (error as Error).name, message: (error as Error).message } });
    }
    Atomics.add(done, 0, 1);
    Atomics.notify(done, 0);
  });
}
