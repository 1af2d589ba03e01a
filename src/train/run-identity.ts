// What a run's checkpoint must share with the spec that resumes, evaluates or merges it, and
// what may differ. The adapter hash covers what decides the adapters' shapes and meaning: the
// model's shapes, its RoPE θ and RMSNorm ε where they are not LLaMA's (architectureIdentity), and, per layer, its quantization and its adapter (kind, rank, alpha, pooling,
// dtype). Everything else — the train, export and target blocks, an adapter's dropout and init,
// the model's file paths, the spec's file name and line numbers — may change between a run and
// a later use of it; the checkpoint records those settings so that the changes can be named.
// Some change nothing a step computes (train.recompute: the backward recomputes what it would
// have kept, bit for bit), so a resumed run continues exactly whatever they say; they are named
// all the same, as what the run did. A setting added to qalc after a checkpoint was written is
// absent from its record: at its default it is no change.
import { createHash } from 'node:crypto';
import { BLOCK_SCHEMAS } from '../check/schema.ts';
import { architectureIdentity } from '../model/architecture.ts';
import { schemaDefault } from '../plan/defaults.ts';
import type { Plan } from '../plan/plan.ts';

type Value = number | boolean | string | readonly string[];

/** Settings a checkpoint records that do not change what its adapters mean, by dotted name. */
export type RecordedSettings = Readonly<Record<string, Value>>;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

export function adapterHash(plan: Plan): string {
  const layers = plan.layers.map((layer) => ({
    name: layer.name,
    inFeatures: layer.inFeatures,
    outFeatures: layer.outFeatures,
    quant: layer.quant,
    adapter: layer.adapter && {
      kind: layer.adapter.kind, rank: layer.adapter.rank, alpha: layer.adapter.alpha, scale: layer.adapter.scale,
      pooling: layer.adapter.pooling ?? null, dtype: layer.adapter.dtype, inputWidth: layer.adapter.inputWidth,
    },
  }));
  return sha256(JSON.stringify({ architecture: architectureIdentity(plan.model.architecture), layers }));
}

/**
 * The hash checkpoints carried before adapterHash. It also covered each layer's source lines,
 * so it matches only the spec file as it was then, read by the same path.
 */
export function legacyPlanHash(plan: Plan): string {
  return sha256(JSON.stringify({ model: architectureIdentity(plan.model.architecture), layers: plan.layers }));
}

export function recordedSettings(plan: Plan): RecordedSettings {
  const settings: Record<string, Value> = {};
  const block = (prefix: string, values: Readonly<Record<string, Value>> | undefined) => {
    settings[prefix] = values === undefined ? 'absent' : 'present';
    for (const [key, value] of Object.entries(values ?? {})) settings[`${prefix}.${key}`] = value;
  };
  if (plan.model.checkpoint) settings['model.checkpoint'] = plan.model.checkpoint.path;
  if (plan.model.tokenizer) settings['model.tokenizer'] = plan.model.tokenizer;
  block('train', plan.train);
  block('export', plan.export);
  for (const [kind, values] of Object.entries(plan.targets)) block(`target ${kind}`, values);
  for (const layer of plan.layers) {
    if (!layer.adapter) continue;
    settings[`${layer.name}.adapter.dropout`] = layer.adapter.dropout;
    settings[`${layer.name}.adapter.init`] = layer.adapter.init;
  }
  return settings;
}

const show = (value: Value | undefined) => (Array.isArray(value) ? `[${value.join(', ')}]` : String(value));

/** `block.key`'s built-in default (train, export), if it has one. */
function defaultOf(key: string): Value | undefined {
  const dot = key.indexOf('.');
  const field = dot < 0 ? undefined : BLOCK_SCHEMAS[key.slice(0, dot)]?.[key.slice(dot + 1)];
  return field === undefined ? undefined : schemaDefault(field);
}

/**
 * What differs between the settings a checkpoint recorded and the spec's now, one line each:
 * `train.steps 200 → 300`, `export added`; a change shared by many layers is one line.
 */
export function settingChanges(recorded: RecordedSettings, current: RecordedSettings): string[] {
  const changes = new Map<string, number>();
  const add = (line: string) => changes.set(line, (changes.get(line) ?? 0) + 1);
  const blockState = (settings: RecordedSettings, name: string) => settings[name] ?? 'absent';
  const keys = [...new Set([...Object.keys(recorded), ...Object.keys(current)])];
  for (const key of keys) {
    const before = recorded[key];
    const after = current[key];
    if (after === 'present' && before !== 'present') { add(`${key} added`); continue; }
    if (before === 'present' && after !== 'present') { add(`${key} removed`); continue; }
    const dot = key.lastIndexOf('.');
    const layered = /^(layers\.\d+\.\w+|lm_head)\.adapter\./.exec(key);
    // Settings of an added or removed block are covered by that one line.
    const owner = key.slice(0, key.indexOf('.') < 0 ? key.length : key.indexOf('.'));
    if (!layered && dot >= 0 && blockState(recorded, owner) !== blockState(current, owner)) continue;
    if (show(before) === show(after)) continue;
    if (before === undefined && after !== undefined && recorded[owner] === 'present' && show(defaultOf(key)) === show(after)) continue;
    add(`${layered ? `adapter.${key.slice(layered[0].length)}` : key} ${before === undefined ? '(unset)' : show(before)} → ${after === undefined ? '(unset)' : show(after)}`);
  }
  return [...changes].map(([line, count]) => (count > 1 ? `${line} (${count} layers)` : line));
}
