// The spec after checking: every setting has a type that matches the schema, every name is
// known, the model's architecture is resolved. The plan stage reads only this.
import type { SourceSpan } from '../diagnostics/diagnostic.ts';
import type { Architecture } from '../model/architecture.ts';
import type { CheckpointFormat } from '../model/read-architecture.ts';
import type { GptqQuantization } from '../model/hf-config.ts';

export type SettingValue = number | boolean | string | readonly string[];

export interface CheckedSetting {
  readonly key: string;
  readonly value: SettingValue;
  /** The whole `key = value`, for messages about the setting. */
  readonly span: SourceSpan;
  /** The value alone, for messages about what was written. */
  readonly valueSpan: SourceSpan;
}

/** Settings of one block by key, in source order. */
export type CheckedSettings = ReadonlyMap<string, CheckedSetting>;

export interface CheckedModel {
  readonly architecture: Architecture;
  /** Where the shapes came from, for `inspect` and for messages. */
  readonly source: 'checkpoint' | 'preset' | 'written';
  readonly preset?: string;
  readonly checkpoint?: { readonly path: string; readonly absolutePath: string; readonly format: CheckpointFormat; readonly gptq?: GptqQuantization };
  readonly settings: CheckedSettings;
  readonly span: SourceSpan;
}

export interface LayerSelector {
  /** `undefined` when the override names no layers: it then applies to every block. */
  readonly layers?: readonly number[];
  readonly layersSpan?: SourceSpan;
  /** `undefined` when the override names no projections: it then applies to all seven. */
  readonly projections?: readonly string[];
  readonly projectionsSpan?: SourceSpan;
}

export interface CheckedOverride {
  readonly selector: LayerSelector;
  readonly settings: CheckedSettings;
  readonly span: SourceSpan;
  /** The header as written (`override layers 10..29 proj down`), for messages. */
  readonly header: string;
}

export interface CheckedTarget {
  readonly kind: 'cuda' | 'wgsl';
  readonly settings: CheckedSettings;
  readonly span: SourceSpan;
}

export interface CheckedSpec {
  readonly name: string;
  readonly nameSpan: SourceSpan;
  /** The file `qalc` was given; paths in the plan are written relative to its folder. */
  readonly entryFile: string;
  readonly model: CheckedModel;
  readonly quant: CheckedSettings;
  readonly quantSpan: SourceSpan;
  readonly adapter?: { readonly settings: CheckedSettings; readonly span: SourceSpan };
  readonly overrides: readonly CheckedOverride[];
  readonly targets: readonly CheckedTarget[];
  readonly train?: CheckedSettings;
  readonly export?: CheckedSettings;
}
