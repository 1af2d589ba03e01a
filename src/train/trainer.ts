// A QA-LoRA fine-tuning run on the CPU: the plan's model quantized with RTN, adapters trained
// with AdamW, held-out loss measured as it goes, checkpoints written atomically, and a run that
// was killed resumes exactly where its last checkpoint left it.
//
//   out/train.jsonl        one object per step: step, loss, lr, grad_norm, tokens_per_s, …
//   out/checkpoint.safetensors   adapters + optimizer state + step (see checkpoint.ts)
//   out/loss.svg, out/summary.json   at the end
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { firstNonFinite } from '../model/finite.ts';
import { readLlama2cCheckpoint, type Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import { readTokenizer, type Tokenizer } from '../model/tokenizer.ts';
import type { Plan } from '../plan/plan.ts';
import { AdamW, constantSchedule, cosineSchedule, linearSchedule, type Schedule } from './adamw.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { alpacaDataset, textDataset, type Dataset } from './data.ts';
import { lossCurveSvg, type LossPoint } from './loss-plot.ts';
import { planToSpec } from './plan-to-spec.ts';
import { Progress } from './progress.ts';
import { QaLoraModel } from './qalora-model.ts';
import type { TrainingOps } from './ops/training-ops.ts';
import { stepSeed } from './seeds.ts';

/** A failure of the run that is not a bug: bad data, a diverging loss. Names what and where. */
export class TrainingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}

export interface TrainOptions {
  readonly plan: Plan;
  /** Paths in the plan are relative to the spec's folder. */
  readonly specDir: string;
  readonly out: string;
  readonly steps?: number;
  readonly resume?: boolean;
  readonly progress?: Progress;
  /** Held-out batches per evaluation (the first ones of the held-out part, always the same). */
  readonly evalBatches?: number;
  /** The backend's ops (see src/runtime/cpu/backend.ts); the TypeScript reference by default. */
  readonly ops?: TrainingOps;
}

export interface TrainSummary {
  readonly steps: number;
  readonly resumedFrom: number | null;
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly evalLossBefore: number;
  readonly evalLossAfter: number;
  readonly tokensPerSecond: number;
  readonly seconds: number;
}

type Settings = Readonly<Record<string, number | boolean | string | readonly string[]>>;

export interface TrainingSetup {
  readonly model: QaLoraModel;
  readonly weights: Llama2cCheckpoint;
  readonly tokenizer: Tokenizer;
  readonly dataset: Dataset;
  readonly settings: Settings;
}

export function planHash(plan: Plan): string {
  // The layers and model decide what a checkpoint's tensors mean; training knobs may change.
  return createHash('sha256').update(JSON.stringify({ model: plan.model.architecture, layers: plan.layers })).digest('hex').slice(0, 16);
}

function requireTrainSettings(plan: Plan): Settings {
  if (!plan.train) throw new TrainingError(`spec ${plan.spec} has no train block: add one with at least \`data = "…"\``);
  if (!plan.train.data) throw new TrainingError(`spec ${plan.spec}: the train block needs \`data = "…"\``);
  return plan.train;
}

/** Model, tokenizer and data, as the plan says; shared by train and eval. */
export function setUpTraining(plan: Plan, specDir: string, ops?: TrainingOps): TrainingSetup {
  const settings = requireTrainSettings(plan);
  const checkpoint = plan.model.checkpoint;
  if (!checkpoint) throw new TrainingError(`spec ${plan.spec}: training needs the weights: set \`checkpoint = "…"\` in the model block`);
  if (checkpoint.format !== 'llama2c') throw new TrainingError(`spec ${plan.spec}: training reads llama2.c checkpoints so far, not ${checkpoint.format}`);
  if (!plan.model.tokenizer) throw new TrainingError(`spec ${plan.spec}: training needs a tokenizer: set \`tokenizer = "…"\` in the model block`);
  const weights = readLlama2cCheckpoint(resolve(specDir, checkpoint.path));
  const tokenizerPath = resolve(specDir, plan.model.tokenizer);
  const tokenizer = readTokenizer(tokenizerPath, plan.model.architecture.vocab);
  const tokenizerBytes = readFileSync(tokenizerPath);
  const dataPath = resolve(specDir, String(settings.data));
  const evalFraction = Number(settings.eval_fraction);
  const dataset = settings.format === 'alpaca'
    ? alpacaDataset(dataPath, tokenizer, evalFraction)
    : textDataset(dataPath, tokenizer, tokenizerBytes, evalFraction, settings.eval_data ? resolve(specDir, String(settings.eval_data)) : undefined);
  const model = new QaLoraModel(weights, planToSpec(plan), { seed: stepSeed(Number(settings.seed), 0, 'init'), ...(ops ? { ops } : {}) });
  return { model, weights, tokenizer, dataset, settings };
}

export async function evaluate(model: QaLoraModel, batches: readonly ReturnType<Dataset['batch']>[]): Promise<number> {
  let total = 0;
  for (const batch of batches) total += await model.forward(batch, { training: false });
  return total / batches.length;
}

function schedule(settings: Settings, steps: number): Schedule {
  const options = { peak: Number(settings.lr), warmup: Number(settings.warmup), total: steps };
  switch (settings.schedule) {
    case 'linear': return linearSchedule(options);
    case 'cosine': return cosineSchedule(options);
    default: return constantSchedule(options);
  }
}

/**
 * Stop on a non-finite loss or gradient, naming the step and the layer. `kept` says what the
 * run folder still holds ("the checkpoint of step 50 (…) is kept", or that there is none).
 */
function checkFinite(model: QaLoraModel, step: number, loss: number, kept: string): void {
  if (!Number.isFinite(loss)) {
    // The base is frozen and finite, so a non-finite loss comes from the adapters: one that
    // holds non-finite values, or else the one whose values grew largest, overflowing the forward.
    const magnitude = (p: { value: ArrayLike<number> }) => { let m = 0; for (let i = 0; i < p.value.length; i++) m = Math.max(m, Math.abs(p.value[i]!)); return m; };
    const params = model.parameters();
    const broken = params.find((p) => !Number.isFinite(magnitude(p)));
    const largest = params.reduce((a, b) => (magnitude(b) > magnitude(a) ? b : a), params[0]!);
    const where = broken
      ? `adapter ${broken.name} holds non-finite values`
      : `the forward overflowed; the largest adapter values are in ${largest.name} (max |value| ${magnitude(largest).toExponential(2)})`;
    throw new TrainingError(`the loss is ${loss} at step ${step}: ${where}; stopping; ${kept}`);
  }
  for (const p of model.parameters()) {
    for (let i = 0; i < p.grad.length; i++) {
      if (!Number.isFinite(p.grad[i])) throw new TrainingError(`the gradient of ${p.name} is ${p.grad[i]} at step ${step}: stopping; ${kept}`);
    }
  }
}

/** On resume, the log keeps exactly the steps the checkpoint holds. */
function truncateLog(path: string, lastStep: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8').split('\n').filter((line) => {
    if (line.trim() === '') return false;
    try {
      return (JSON.parse(line) as { step: number }).step <= lastStep;
    } catch {
      return false; // a line cut short by the kill
    }
  });
  writeFileSync(path, kept.map((l) => l + '\n').join(''));
}

export async function train(options: TrainOptions): Promise<TrainSummary> {
  const { plan, specDir, out } = options;
  const progress = options.progress ?? new Progress();
  const { model, dataset, settings } = setUpTraining(plan, specDir, options.ops);
  const steps = options.steps ?? Number(settings.steps);
  const batchSize = Number(settings.batch);
  const seqLen = Number(settings.seq_len);
  const accumulation = Number(settings.grad_accum);
  const seed = Number(settings.seed);
  const evalEvery = Number(settings.eval_every);
  const checkpointEvery = Number(settings.checkpoint_every);
  const optimizer = new AdamW(model.parameters(), {
    lr: schedule(settings, steps),
    beta1: Number(settings.beta1), beta2: Number(settings.beta2), eps: Number(settings.eps),
    weightDecay: Number(settings.weight_decay), maxGradNorm: Number(settings.max_grad_norm),
  });

  mkdirSync(out, { recursive: true });
  const checkpointPath = join(out, 'checkpoint.safetensors');
  const logPath = join(out, 'train.jsonl');
  const identity = { spec: plan.spec, planHash: planHash(plan), seed };
  let step = 0;
  let resumedFrom: number | null = null;
  let checkpointStep: number | null = null;
  const kept = () => checkpointStep === null ? 'no checkpoint has been written yet' : `the checkpoint of step ${checkpointStep} (${checkpointPath}) is kept`;
  if (options.resume) {
    step = loadCheckpoint(checkpointPath, model, optimizer, identity);
    resumedFrom = step;
    checkpointStep = step;
    truncateLog(logPath, step);
    progress.message(`resuming ${plan.spec} at step ${step} from ${checkpointPath}`);
  } else if (existsSync(checkpointPath)) {
    throw new TrainingError(`${out} already holds a run (${checkpointPath}): continue it with --resume, or choose another --out`);
  } else {
    writeFileSync(logPath, '');
  }

  const evalBatches = dataset.evalBatches(batchSize, seqLen, options.evalBatches ?? 4);
  const evalLossBefore = await evaluate(model, evalBatches);
  if (resumedFrom === null) progress.message(`${plan.spec}: ${dataset.trainTokens.toLocaleString('en-US')} training tokens, ${dataset.evalTokens.toLocaleString('en-US')} held out; held-out loss before training ${evalLossBefore.toFixed(4)}`);

  const tokensPerStep = batchSize * seqLen * accumulation;
  const started = performance.now();
  let firstLoss = NaN;
  let lastLoss = NaN;
  let evalLoss = evalLossBefore;
  const startStep = step;
  while (step < steps) {
    const stepStarted = performance.now();
    let loss = 0;
    for (let micro = 0; micro < accumulation; micro++) {
      const draw = step * accumulation + micro;
      const batch = dataset.batch(stepSeed(seed, draw, 'batch'), batchSize, seqLen);
      const microLoss = await model.forward(batch, { training: true, dropoutSeed: stepSeed(seed, draw, 'dropout') });
      if (!Number.isFinite(microLoss)) checkFinite(model, step + 1, microLoss, kept());
      await model.backward({ accumulate: micro > 0 });
      loss += microLoss / accumulation;
    }
    if (accumulation > 1) for (const p of model.parameters()) for (let i = 0; i < p.grad.length; i++) p.grad[i] /= accumulation;
    checkFinite(model, step + 1, loss, kept());
    const report = optimizer.step();
    step = report.step;
    const seconds = (performance.now() - stepStarted) / 1000;
    if (Number.isNaN(firstLoss)) firstLoss = loss;
    lastLoss = loss;
    const record: Record<string, number> = {
      step, loss, lr: report.lr, grad_norm: report.gradNorm, tokens_per_s: tokensPerStep / seconds, seconds,
    };
    if (step % evalEvery === 0 || step === steps) {
      evalLoss = await evaluate(model, evalBatches);
      record.eval_loss = evalLoss;
      record.eval_perplexity = Math.exp(evalLoss);
    }
    appendFileSync(logPath, JSON.stringify(record) + '\n');
    if (step % checkpointEvery === 0 || step === steps) {
      // An update can overflow to Infinity with a finite loss and gradient: such adapters must
      // not replace the last good checkpoint.
      const broken = model.parameters().find((p) => firstNonFinite(p.value) >= 0);
      if (broken) throw new TrainingError(`the update of step ${step} made adapter ${broken.name} non-finite (learning rate ${report.lr.toExponential(2)}); stopping; ${kept()}`);
      saveCheckpoint(checkpointPath, model, optimizer, { ...identity, step });
      checkpointStep = step;
    }
    const elapsed = (performance.now() - started) / 1000;
    const rate = (step - startStep) / elapsed;
    progress.update({ step, steps, loss, lr: report.lr, tokensPerSecond: tokensPerStep / seconds, secondsLeft: (steps - step) / rate });
  }
  progress.done();

  const seconds = (performance.now() - started) / 1000;
  const summary: TrainSummary = {
    steps, resumedFrom, firstLoss, lastLoss, evalLossBefore, evalLossAfter: evalLoss,
    tokensPerSecond: ((steps - startStep) * tokensPerStep) / seconds, seconds,
  };
  writeFinalReport(out, plan.spec, logPath, summary);
  return summary;
}

function writeFinalReport(out: string, spec: string, logPath: string, summary: TrainSummary): void {
  const records = readFileSync(logPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { step: number; loss: number; eval_loss?: number });
  const trainPoints: LossPoint[] = records.map((r) => ({ step: r.step, loss: r.loss }));
  const evalPoints: LossPoint[] = [{ step: 0, loss: summary.evalLossBefore }, ...records.filter((r) => r.eval_loss !== undefined).map((r) => ({ step: r.step, loss: r.eval_loss! }))];
  writeFileSync(join(out, 'loss.svg'), lossCurveSvg(`${spec}: QA-LoRA fine-tuning`, trainPoints, evalPoints));
  writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
}
