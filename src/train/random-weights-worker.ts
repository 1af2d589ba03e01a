// A worker of randomWeightsInParallel (random-weights-parallel.ts): draws and quantizes the
// projections it is sent, one message each, and answers with the quantized weight (its arrays
// transferred, not copied) — or, for a job that says `draw`, with the drawn floats alone, which a
// device quantizes — or the error, then bumps the shared counter the main thread waits on.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { drawRandomMatrix, randomMatrixRows, RANDOM_TENSOR_NAMES, type RandomProjection } from '../model/random-weights.ts';
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
  /** Answer with the floats ([out, in]) instead of the quantized weight. */
  readonly draw?: boolean;
}

if (parentPort) {
  const { port, done } = workerData as { port: MessagePort; done: Int32Array };
  port.on('message', (job: ProjectionJob) => {
    try {
      const name = `layers.${job.l}.${RANDOM_TENSOR_NAMES[job.p]}`;
      if (job.draw) {
        const floats = drawRandomMatrix(job.seed, name, job.outFeatures, job.inFeatures, new Float32Array(job.outFeatures * job.inFeatures));
        port.postMessage({ id: job.id, floats }, [floats.buffer] as ArrayBuffer[]);
      } else {
        const weight = quantizeProjection(`layers.${job.l}.${job.p}`, job.outFeatures, job.inFeatures, job.spec, randomMatrixRows(job.seed, name, job.inFeatures));
        port.postMessage({ id: job.id, weight }, [weight.q.buffer, weight.scales.buffer, weight.zeros.buffer] as ArrayBuffer[]);
      }
    } catch (error) {
      port.postMessage({ id: job.id, error: { name: (error as Error).name, message: (error as Error).message } });
    }
    Atomics.add(done, 0, 1);
    Atomics.notify(done, 0);
  });
}
