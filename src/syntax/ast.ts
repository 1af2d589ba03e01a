// The abstract syntax of a .qal file: statements in source order, every node with its span.
import type { SourceSpan } from '../diagnostics/diagnostic.ts';

export type ScalarKind = 'integer' | 'number' | 'string' | 'name';

export interface Scalar {
  readonly kind: ScalarKind;
  /** The literal as written (numbers keep their spelling: 2e-5 stays 2e-5). */
  readonly text: string;
  /** Numbers as numbers, strings unescaped, names as written. */
  readonly value: number | string;
  readonly span: SourceSpan;
}

export interface ListValue {
  readonly kind: 'list';
  readonly items: readonly Scalar[];
  readonly span: SourceSpan;
}

export type Value = Scalar | ListValue;

export interface Setting {
  readonly key: string;
  readonly keySpan: SourceSpan;
  readonly value: Value;
  readonly span: SourceSpan;
}

export interface Body {
  readonly settings: readonly Setting[];
  readonly span: SourceSpan;
}

export type BlockKind = 'model' | 'quant' | 'adapter' | 'train' | 'export';

/** `all`, a single index, or an inclusive range `first..last`. */
export type LayerItem =
  | { readonly kind: 'all'; readonly span: SourceSpan }
  | { readonly kind: 'range'; readonly first: number; readonly last: number; readonly span: SourceSpan };

export type Selector =
  | { readonly kind: 'layers'; readonly items: readonly LayerItem[]; readonly span: SourceSpan }
  | { readonly kind: 'proj'; readonly names: readonly { readonly name: string; readonly span: SourceSpan }[]; readonly span: SourceSpan };

export type Statement =
  | { readonly kind: 'spec'; readonly name: string; readonly nameSpan: SourceSpan; readonly span: SourceSpan }
  | { readonly kind: 'include'; readonly path: string; readonly pathSpan: SourceSpan; readonly span: SourceSpan }
  | { readonly kind: 'block'; readonly block: BlockKind; readonly body: Body; readonly span: SourceSpan }
  | { readonly kind: 'target'; readonly target: string; readonly targetSpan: SourceSpan; readonly body: Body; readonly span: SourceSpan }
  | { readonly kind: 'override'; readonly selectors: readonly Selector[]; readonly body: Body; readonly span: SourceSpan };

export interface Comment {
  readonly text: string;
  readonly span: SourceSpan;
}

export interface SourceFile {
  readonly path: string;
  readonly text: string;
  readonly statements: readonly Statement[];
  /** Kept for the formatter; the checker ignores them. */
  readonly comments: readonly Comment[];
}
