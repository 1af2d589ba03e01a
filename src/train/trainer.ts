// A QA-LoRA fine-tuning run on the CPU: the plan's model quantized with RTN, adapters trained
// with AdamW, held-out loss measured as it goes, checkpoints written atomically, and a run that
// was killed resumes exactly where its last checkpoint left it.
//
//   out/train.jsonl        one object per step: step, loss, lr, grad_norm, tokens_per_s, …
//   out/checkpoint.safetensors   adapters + optimizer state + step (see checkpoint.ts)
//   out/loss.svg, out/summary.json   at the end, of the whole run (see run-records.ts)
//   out/run.lock           while a process writes the folder (see run-lock.ts)
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Architecture } from '../model/architecture.ts';
import { firstNonFinite } from '../model/finite.ts';
import { readGptqCheckpoint } from '../model/gptq-checkpoint.ts';
import { readHfCheckpoint } from '../model/hf-checkpoint.ts';
import { readLlama2cCheckpoint, type Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import { RANDOM_WEIGHT_STD, randomWeightCount, randomWeights } from '../model/random-weights.ts';
import { modelTokenizerPath, readTokenizer } from '../model/read-tokenizer.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Plan } from '../plan/plan.ts';
import { AdamW, constantSchedule, cosineSchedule, linearSchedule, type Optimizer, type Schedule } from './adamw.ts';
import { changesNotice, openCheckpoint, restoreTraining, saveCheckpoint, type OpenedCheckpoint, type ScheduleRecord } from './checkpoint.ts';
import { alpacaDataset, DataError, textDataset, type Dataset } from './data.ts';
import { gptqCacheKey, readGptqCache, writeGptqCache } from './gptq-cache.ts';
import { gptqRequestOf, quantizeModelWithGptq } from './gptq-model.ts';
import { PROJECTIONS, type QaLoraSpec } from './qalora-spec.ts';
import { heldOutLoss, heldOutTokens } from './held-out-loss.ts';
import { planToSpec } from './plan-to-spec.ts';
import { Progress } from './progress.ts';
import { QaLoraModel } from './qalora-model.ts';
import { quantizeAsDrawn, quantizeDrawnOnDevice } from './quantize-projection.ts';
import { drawInWorkers, quantizeInWorkers } from './random-weights-parallel.ts';
import { recomputationOf } from './recompute.ts';
import type { FrozenQuantizer, TrainingOps } from '../runtime/ops.ts';
import { lockRunFolder } from './run-lock.ts';
import { describeStepGraph, type BackwardRun } from '../runtime/cuda/step-graph.ts';
import { readLog, truncateLog, writeRunReport, type StepRecord, type TrainSummary } from './run-records.ts';
import { stepSeed } from './seeds.ts';

export type { TrainSummary } from './run-records.ts';

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
  /** Held-out batches per evaluation (the first ones of the held-out part); all of them by default. */
  readonly evalBatches?: number;
  /** The backend's ops (see src/runtime/cpu/backend.ts); the TypeScript reference by default. */
  readonly ops?: TrainingOps;
  /**
   * Train on seeded random weights (a spec without a checkpoint: a preset or a written-out
   * architecture), asked for explicitly with `--random-weights`. `seed` undefined: the run's
   * recorded seed on --resume, the spec's train.seed otherwise.
   */
  readonly randomWeights?: { readonly seed?: number };
}

type Settings = Readonly<Record<string, number | boolean | string | readonly string[]>>;

export interface TrainingSetup {
  readonly model: QaLoraModel;
  readonly weights: Llama2cCheckpoint;
  readonly tokenizer: Tokenizer;
  readonly dataset: Dataset;
  readonly settings: Settings;
}

export function requireTrainSettings(plan: Plan): Settings {
  if (!plan.train) throw new TrainingError(`spec ${plan.spec} has no train block: add one with at least \`data = "…"\``);
  if (!plan.train.data) throw new TrainingError(`spec ${plan.spec}: the train block needs \`data = "…"\``);
  return plan.train;
}

function readWeights(path: string, format: string): Llama2cCheckpoint {
  switch (format) {
    case 'hf': return readHfCheckpoint(path);
    case 'gptq': return readGptqCheckpoint(path);
    default: return readLlama2cCheckpoint(path);
  }
}

/**
 * `method = gptq`: the GPTQ layers quantized from calibration windows (the spec's calibration
 * text, or the training data when it names none), added to the checkpoint's quantized layers.
 */
function withGptqLayers(weights: Llama2cCheckpoint, plan: Plan, specDir: string, settings: Settings, tokenizer: Tokenizer, dataset: Dataset, report: (line: string) => void): Llama2cCheckpoint {
  const request = gptqRequestOf(plan);
  if (!request) return weights;
  const calibrationPath = request.calibration ? resolve(specDir, request.calibration) : undefined;
  if (calibrationPath && !existsSync(calibrationPath)) throw new DataError(calibrationPath, 'no such file: it is the calibration text of method = gptq');
  const source = calibrationPath ? textDataset(calibrationPath, tokenizer, 0) : dataset;
  const seqLen = Number(settings.seq_len);
  const calibration = source.batch(stepSeed(Number(settings.seed), 0, 'calibration'), request.samples, seqLen);
  report(`gptq: calibrating on ${request.samples} windows of ${seqLen} tokens from ${calibrationPath ?? `the training data (${String(settings.data)}; no calibration set)`}`);
  const key = gptqCacheKey(weights, request, calibration);
  const expected = request.layers.flatMap((block, l) => PROJECTIONS.filter((p) => block[p].method === 'gptq').map((p) => `layers.${l}.${p}`));
  let quantized = readGptqCache(key, expected, report);
  if (quantized) report(`gptq: ${quantized.size} layers from the cache (${key.slice(0, 12)}…: same weights, settings and calibration tokens)`);
  else {
    quantized = new Map(quantizeModelWithGptq(weights, request, calibration, report).quantized);
    writeGptqCache(key, quantized);
  }
  return { ...weights, quantized: new Map([...(weights.quantized ?? []), ...quantized]) };
}

/**
 * Model, tokenizer and data, as the plan says; shared by train and eval. `report` gets what
 * loading has to say (GPTQ's per-layer lines).
 */
export function setUpTraining(plan: Plan, specDir: string, ops?: TrainingOps, report: (line: string) => void = (line) => process.stderr.write(`${line}\n`), randomWeightsSeed?: number): TrainingSetup {
  const settings = requireTrainSettings(plan);
  const checkpoint = plan.model.checkpoint;
  if (checkpoint && randomWeightsSeed !== undefined) throw new TrainingError(`spec ${plan.spec} has weights (${checkpoint.path}): random weights (seed ${randomWeightsSeed}) are only for a spec without a checkpoint`);
  if (!checkpoint && randomWeightsSeed === undefined) {
    throw new TrainingError(`spec ${plan.spec}: training needs the weights: set \`checkpoint = "…"\` in the model block, ` +
      `or train on seeded random weights with \`qalc train SPEC --random-weights [--seed N]\` (to measure the shape: the losses mean nothing about a real model)`);
  }
  const tokenizerPath = modelTokenizerPath(plan.model.tokenizer, checkpoint, specDir);
  if (!tokenizerPath) throw new TrainingError(`spec ${plan.spec}: training needs a tokenizer: set \`tokenizer = "…"\` in the model block${!checkpoint || checkpoint.format === 'llama2c' ? '' : ` (${checkpoint.path} has no tokenizer.json or tokenizer.model)`}`);
  const spec = planToSpec(plan);
  let weights: Llama2cCheckpoint;
  if (checkpoint) weights = readWeights(resolve(specDir, checkpoint.path), checkpoint.format);
  else {
    const arch = plan.model.architecture;
    const parameters = randomWeightCount(arch);
    report(`WARNING: RANDOM WEIGHTS, seeded ${randomWeightsSeed}: spec ${plan.spec} has no checkpoint, so its base model is normal(0, ${RANDOM_WEIGHT_STD}) noise; ` +
      `the losses of this run mean nothing about a real model (${(parameters / 1e6).toFixed(1)} M parameters)`);
    // Each quantized projection is drawn and quantized a row at a time, its floats never held;
    // GPTQ's calibration pass runs the float model, so a GPTQ plan gets the floats.
    const gptq = gptqRequestOf(plan) !== null;
    const deviceQuantizer = gptq ? undefined : ops?.frozenQuantizer?.();
    weights = deviceQuantizer ? randomWeightsOnDevice(arch, randomWeightsSeed!, spec, deviceQuantizer, report) : randomWeightsOnHost(arch, randomWeightsSeed!, spec, gptq, report);
  }
  const tokenizer = readTokenizer(tokenizerPath, plan.model.architecture.vocab, checkpoint?.path ?? `spec ${plan.spec}`);
  const dataPath = resolve(specDir, String(settings.data));
  const evalFraction = Number(settings.eval_fraction);
  const dataset = settings.format === 'alpaca'
    ? alpacaDataset(dataPath, tokenizer, evalFraction)
    : textDataset(dataPath, tokenizer, evalFraction, settings.eval_data ? resolve(specDir, String(settings.eval_data)) : undefined);
  const quantizedWeights = withGptqLayers(weights, plan, specDir, settings, tokenizer, dataset, report);
  const { blocks: recomputedBlocks, mlp: recomputeMlp, qkv: recomputeQkv } = recomputationOf(settings.recompute, plan.model.architecture.layers);
  const model = new QaLoraModel(quantizedWeights, spec, { seed: stepSeed(Number(settings.seed), 0, 'init'), recomputedBlocks, recomputeMlp, recomputeQkv, ...(ops ? { ops } : {}) });
  return { model, weights: quantizedWeights, tokenizer, dataset, settings };
}

/** Random weights drawn and quantized on the host: on worker threads where the bundle has them (a GPTQ plan gets the floats). */
function randomWeightsOnHost(arch: Architecture, seed: number, spec: QaLoraSpec, gptq: boolean, report: (line: string) => void): Llama2cCheckpoint {
  const started = performance.now();
  const workers = gptq ? undefined : quantizeInWorkers(arch, seed, spec);
  try {
    const weights = randomWeights(arch, seed, gptq ? undefined : workers?.quantize ?? quantizeAsDrawn(spec));
    report(`random weights: drawn${gptq ? '' : ' and quantized'} on ${workers?.threads ?? 1} thread${workers ? 's' : ''} in ${seconds(performance.now() - started)}`);
    return weights;
  } finally {
    workers?.close();
  }
}

/** Random weights drawn on the host (on worker threads where the bundle has them) and quantized on the device, a projection at a time. */
function randomWeightsOnDevice(arch: Architecture, seed: number, spec: QaLoraSpec, quantizer: FrozenQuantizer, report: (line: string) => void): Llama2cCheckpoint {
  const started = performance.now();
  const draws = drawInWorkers(arch, seed, spec);
  const times = { draw: 0, quantize: 0 };
  try {
    const weights = randomWeights(arch, seed, quantizeDrawnOnDevice(spec, seed, quantizer, draws, times));
    report(`random weights: drawn on ${draws?.threads ?? 1} thread${draws ? 's' : ''} and quantized on the device in ${seconds(performance.now() - started)} ` +
      `(${seconds(times.draw)} ${draws ? 'waiting for the draws' : 'drawing'}, ${seconds(times.quantize)} uploading and quantizing)`);
    return weights;
  } finally {
    draws?.close();
    quantizer.close();
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function scheduleOf(settings: Settings, steps: number): ScheduleRecord {
  const kind = settings.schedule === 'linear' || settings.schedule === 'cosine' ? settings.schedule : 'constant';
  return { kind, peak: Number(settings.lr), warmup: Number(settings.warmup), total: steps };
}

function scheduleFunction(record: ScheduleRecord): Schedule {
  switch (record.kind) {
    case 'linear': return linearSchedule(record);
    case 'cosine': return cosineSchedule(record);
    default: return constantSchedule(record);
  }
}

const describeSchedule = (s: ScheduleRecord) => `${s.kind} schedule (peak lr ${s.peak}, warm-up ${s.warmup}${s.kind === 'constant' ? '' : `, ${s.total} steps`})`;

/**
 * A resumed run keeps the schedule it began with, so that it computes what the run would have
 * without the stop. Asking for another number of steps says what that means, and is refused
 * where it cannot mean anything: going back, or steps past a decay's end, where the lr is 0.
 */
function checkResumedSteps(schedule: ScheduleRecord, current: ScheduleRecord, at: number, steps: number, out: string, progress: Progress): void {
  if (steps < at) throw new TrainingError(`the run in ${out} is already at step ${at}, past the ${steps} steps asked for: resume with --steps ${at} or more`);
  const decays = schedule.kind !== 'constant';
  if (decays && steps > schedule.total) {
    throw new TrainingError(`${steps} steps run past the end of this run's ${schedule.total}-step ${schedule.kind} schedule, where the learning rate has decayed to 0: ` +
      `steps ${schedule.total + 1}–${steps} would not train. ${at < schedule.total ? `Resume with --steps ${schedule.total} or fewer` : `The run is complete at step ${at}`}; ` +
      `to train ${steps} steps, start a new run (another --out) with steps = ${steps}`);
  }
  if (JSON.stringify({ ...current, total: 0 }) !== JSON.stringify({ ...schedule, total: 0 }) || (decays && current.total !== schedule.total)) {
    progress.message(`note: the run keeps the learning-rate schedule it began with: ${describeSchedule(schedule)}`);
  }
  if (steps === at) progress.message(`the run in ${out} is complete at step ${at}: nothing to train`);
  else if (decays && steps < schedule.total) {
    progress.message(`note: stopping at step ${steps} of this run's ${schedule.total}-step ${schedule.kind} schedule: the learning rate there is ${scheduleFunction(schedule)(steps - 1).toExponential(2)}, not decayed to 0`);
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

/**
 * The random weights' seed of this run, or undefined for real weights. A resumed run must train
 * on the weights it began with: a seed other than the recorded one, or random weights for a run
 * on real ones (or the reverse), is refused by name.
 */
function randomWeightsSeedOf(options: TrainOptions, opened: OpenedCheckpoint | undefined): number | undefined {
  const asked = options.randomWeights;
  if (!opened) return asked ? asked.seed ?? Number(requireTrainSettings(options.plan).seed) : undefined;
  const recorded = opened.randomWeightsSeed;
  if (recorded === undefined && asked) throw new TrainingError(`${opened.path} was trained on real weights: resume it without --random-weights`);
  if (recorded !== undefined && !asked) throw new TrainingError(`${opened.path} was trained on random weights seeded ${recorded}: resume it with --random-weights --seed ${recorded}`);
  if (recorded !== undefined && asked?.seed !== undefined && asked.seed !== recorded) {
    throw new TrainingError(`${opened.path} was trained on random weights seeded ${recorded}, not --seed ${asked.seed}: resume it with --seed ${recorded}, or start another run (another --out)`);
  }
  return recorded;
}

export async function train(options: TrainOptions): Promise<TrainSummary> {
  const progress = options.progress ?? new Progress();
  const lock = lockRunFolder(options.out, 'train', (text) => progress.message(text));
  try {
    return await trainLocked(options, progress);
  } finally {
    lock.release();
  }
}

async function trainLocked(options: TrainOptions, progress: Progress): Promise<TrainSummary> {
  const { plan, specDir, out } = options;
  const checkpointPath = join(out, 'checkpoint.safetensors');
  const opened = options.resume ? openCheckpoint(checkpointPath, plan, 'it cannot resume this one (start again without --resume, or use another --out)') : undefined;
  const randomWeightsSeed = randomWeightsSeedOf(options, opened);
  const { model, dataset, settings } = setUpTraining(plan, specDir, options.ops, (line) => progress.message(line), randomWeightsSeed);
  const steps = options.steps ?? Number(settings.steps);
  const batchSize = Number(settings.batch);
  const seqLen = Number(settings.seq_len);
  const accumulation = Number(settings.grad_accum);
  const seed = Number(settings.seed);
  const evalEvery = Number(settings.eval_every);
  const checkpointEvery = Number(settings.checkpoint_every);
  const logPath = join(out, 'train.jsonl');
  const evalBatches = dataset.evalBatches(batchSize, seqLen, options.evalBatches);

  const requested = scheduleOf(settings, steps);
  let schedule = requested;
  let step = 0;
  let resumedFrom: number | null = null;
  let evalLossBefore: number | undefined;
  if (opened) {
    step = opened.step;
    resumedFrom = step;
    schedule = opened.schedule ?? requested;
    evalLossBefore = opened.evalLossBefore;
    progress.message(`resuming ${plan.spec} at step ${step} from ${checkpointPath}`);
    const notice = changesNotice(checkpointPath, opened.changes, `; the spec's settings apply from step ${step + 1} on, but for the learning-rate schedule`);
    if (notice) progress.message(notice);
    checkResumedSteps(schedule, requested, step, steps, out, progress);
  } else if (existsSync(checkpointPath)) {
    throw new TrainingError(`${out} already holds a run (${checkpointPath}): continue it with --resume, or choose another --out`);
  }
  const adamwOptions = {
    lr: scheduleFunction(schedule),
    beta1: Number(settings.beta1), beta2: Number(settings.beta2), eps: Number(settings.eps),
    weightDecay: Number(settings.weight_decay), maxGradNorm: Number(settings.max_grad_norm),
  };
  // A device backend's AdamW keeps adapters, gradients and moments where the backward left them.
  const optimizer: Optimizer = model.ops.adamw?.(model.parameters(), adamwOptions) ?? new AdamW(model.parameters(), adamwOptions);
  const onDevice = optimizer.onDevice === true;
  /** The adapters (and their gradients) back on the host, for checks and checkpoints. */
  const syncAdapters = async (grads: boolean) => {
    if (onDevice) await model.ops.syncToHost(model.parameters().flatMap((p) => (grads ? [p.value, p.grad] : [p.value])));
  };

  let checkpointStep: number | null = null;
  const kept = () => checkpointStep === null ? 'no checkpoint has been written yet' : `the checkpoint of step ${checkpointStep} (${checkpointPath}) is kept`;
  // The loss before training is the base model's (B = 0): measured before the checkpoint's
  // adapters are loaded, unless the checkpoint recorded it.
  evalLossBefore ??= (await heldOutLoss(model, evalBatches)).loss;
  const evalTokens = heldOutTokens(evalBatches);
  if (opened) {
    restoreTraining(opened, model, optimizer);
    checkpointStep = step;
    truncateLog(logPath, step);
  } else {
    writeFileSync(logPath, '');
    progress.message(`${plan.spec}: ${dataset.trainTokens.toLocaleString('en-US')} training tokens, ${dataset.evalTokens.toLocaleString('en-US')} held out; ` +
      `held-out loss before training ${evalLossBefore.toFixed(4)} (over ${evalTokens.toLocaleString('en-US')} tokens)`);
  }

  const stepGraph = model.ops.stepGraph;
  if (accumulation > 1) stepGraph?.never(`grad_accum = ${accumulation}: the gradients come back to the host after each micro-batch`);
  const tokensPerStep = batchSize * seqLen * accumulation;
  const started = performance.now();
  const startStep = step;
  // A profiled device backend's time by kind so far: the step's share is the difference.
  const profiled = () => {
    const byKind: Record<string, number> = {};
    for (const e of options.ops?.deviceStats?.().profile ?? []) byKind[e.kind] = (byKind[e.kind] ?? 0) + e.milliseconds;
    return byKind;
  };
  while (step < steps) {
    const stepStarted = performance.now();
    const profiledBefore = profiled();
    let loss = 0;
    let ran: BackwardRun | undefined;
    for (let micro = 0; micro < accumulation; micro++) {
      const draw = step * accumulation + micro;
      const batch = dataset.batch(stepSeed(seed, draw, 'batch'), batchSize, seqLen);
      const microLoss = await model.forward(batch, { training: true, dropoutSeed: stepSeed(seed, draw, 'dropout'), logitsOnDevice: true });
      if (!Number.isFinite(microLoss)) {
        await syncAdapters(false);
        checkFinite(model, step + 1, microLoss, kept());
      }
      // Accumulated micro-batches are averaged on the host, so then the gradients come back.
      const backward = () => model.backward({ accumulate: micro > 0, syncGradients: !onDevice || accumulation > 1 });
      // A device backend replays the backward as a CUDA graph once it has settled (step-graph.ts).
      if (stepGraph !== undefined && accumulation === 1) ran = await stepGraph.backward(step + 1, backward);
      else await backward();
      loss += microLoss / accumulation;
    }
    if (accumulation > 1) for (const p of model.parameters()) for (let i = 0; i < p.grad.length; i++) p.grad[i] /= accumulation;
    if (onDevice && accumulation === 1) {
      // A finite norm means every gradient is finite: the host scan is needed only to name the one that is not.
      if (!Number.isFinite(await optimizer.gradNorm())) {
        await syncAdapters(true);
        checkFinite(model, step + 1, loss, kept());
      }
    } else {
      checkFinite(model, step + 1, loss, kept());
    }
    const report = await optimizer.step();
    step = report.step;
    const seconds = (performance.now() - stepStarted) / 1000;
    let record: StepRecord = { step, loss, lr: report.lr, grad_norm: report.gradNorm, tokens_per_s: tokensPerStep / seconds, seconds, ...(ran !== undefined ? { backward: ran } : {}) };
    const profiledAfter = profiled();
    if (Object.keys(profiledAfter).length > 0) {
      record = { ...record, profile_ms: Object.fromEntries(Object.entries(profiledAfter).map(([kind, ms]) => [kind, Math.round((ms - (profiledBefore[kind] ?? 0)) * 1000) / 1000])) };
    }
    if (step % evalEvery === 0 || step === steps) {
      const evalStarted = performance.now();
      const evaluation = await heldOutLoss(model, evalBatches);
      record = { ...record, eval_loss: evaluation.loss, eval_perplexity: Math.exp(evaluation.loss), eval_tokens: evaluation.tokens, eval_seconds: (performance.now() - evalStarted) / 1000 };
      // The evaluation's forwards move the arrays and the pool: the next backwards settle and are captured again.
      stepGraph?.unsettle(`the evaluation at step ${step}`);
    }
    appendFileSync(logPath, JSON.stringify(record) + '\n');
    if (step % checkpointEvery === 0 || step === steps) {
      // An update can overflow to Infinity with a finite loss and gradient: such adapters must
      // not replace the last good checkpoint.
      await syncAdapters(false);
      stepGraph?.unsettle(`the checkpoint at step ${step}`);
      const broken = model.parameters().find((p) => firstNonFinite(p.value) >= 0);
      if (broken) throw new TrainingError(`the update of step ${step} made adapter ${broken.name} non-finite (learning rate ${report.lr.toExponential(2)}); stopping; ${kept()}`);
      saveCheckpoint(checkpointPath, plan, model, optimizer, { step, seed, schedule, evalLossBefore, ...(randomWeightsSeed !== undefined ? { randomWeightsSeed } : {}) });
      checkpointStep = step;
    }
    const elapsed = (performance.now() - started) / 1000;
    const rate = (step - startStep) / elapsed;
    progress.update({ step, steps, loss, lr: report.lr, tokensPerSecond: tokensPerStep / seconds, secondsLeft: (steps - step) / rate });
  }
  progress.done();
  return writeRunReport(out, plan.spec, {
    resumedFrom, evalLossBefore, evalTokens, ...(randomWeightsSeed !== undefined ? { randomWeightsSeed } : {}),
    ...(options.ops?.deviceStats !== undefined ? { device: options.ops.deviceStats() } : {}),
    ...(stepGraph !== undefined ? { stepGraph: describeStepGraph(stepGraph.state()) } : {}),
  });
}
