// Checks the header of an `override`: which layers and projections it selects.
import { error, warning, type Diagnostic, type SourceSpan } from '../diagnostics/diagnostic.ts';
import { didYouMean, oneOf } from '../diagnostics/suggest.ts';
import type { Selector } from '../syntax/ast.ts';
import type { LayerSelector } from './checked-spec.ts';
import { NOT_LINEAR, OUTSIDE_BLOCKS, PROJECTIONS } from './schema.ts';

const SELECTABLE: readonly string[] = [...PROJECTIONS, ...OUTSIDE_BLOCKS];

/** From the start of `first` to the end of `last` (in one file, `last` not before `first`). */
function spanning(first: SourceSpan, last: SourceSpan): SourceSpan {
  return { ...first, length: last.offset + last.length - first.offset };
}

/** "32, 33, 34 and 99,965 more" */
function listed(items: readonly string[], most = 3): string {
  if (items.length <= most) return oneOf(items).replace(/'/g, '').replace(/ or /, ' and ');
  return `${items.slice(0, most).join(', ')} and ${(items.length - most).toLocaleString('en-US')} more`;
}

export function checkSelector(selectors: readonly Selector[], layerCount: number, out: Diagnostic[]): LayerSelector | undefined {
  let layers: number[] | undefined;
  let layersSpan: SourceSpan | undefined;
  let projections: string[] | undefined;
  let projectionsSpan: SourceSpan | undefined;
  let ok = true;

  for (const selector of selectors) {
    if (selector.kind === 'layers') {
      if (layers) {
        out.push(error(selector.span, 'this override already selects layers', 'list them in one selector: `layers 0, 4..7`'));
        ok = false;
        continue;
      }
      const chosen = new Set<number>();
      // Every index past the model's last layer, reported in one warning per selector: a list
      // of 100,000 indices is one mistake, not 99,968.
      const beyond: { text: string; span: SourceSpan }[] = [];
      for (const item of selector.items) {
        if (item.kind === 'all') {
          for (let i = 0; i < layerCount; i++) chosen.add(i);
          continue;
        }
        if (item.first > item.last) {
          out.push(error(item.span, `empty range ${item.first}..${item.last}: ranges go up`, `write ${item.last}..${item.first}`));
          ok = false;
          continue;
        }
        if (item.last >= layerCount) {
          const from = Math.max(item.first, layerCount);
          beyond.push({ text: from === item.last ? String(from) : `${from}..${item.last}`, span: item.span });
        }
        for (let i = item.first; i <= Math.min(item.last, layerCount - 1); i++) chosen.add(i);
      }
      if (beyond.length > 0) out.push(warning(spanning(beyond[0]!.span, beyond[beyond.length - 1]!.span), `layers ${listed(beyond.map((b) => b.text))} match nothing: the model has ${layerCount} layers (0..${layerCount - 1})`));
      layers = [...chosen].sort((a, b) => a - b);
      layersSpan = selector.span;
    } else {
      if (projections) {
        out.push(error(selector.span, 'this override already selects projections', 'list them in one selector: `proj q, k, v`'));
        ok = false;
        continue;
      }
      const chosen: string[] = [];
      for (const { name, span } of selector.names) {
        if ((NOT_LINEAR as readonly string[]).includes(name)) {
          out.push(error(span, `'${name}' is not a linear layer: qalc quantizes and adapts linear layers only`, `selectable: ${oneOf(SELECTABLE)}`));
          ok = false;
        } else if (name === 'all') {
          chosen.push(...PROJECTIONS.filter((p) => !chosen.includes(p)));
        } else if (!SELECTABLE.includes(name)) {
          out.push(error(span, `unknown projection '${name}': expected ${oneOf(SELECTABLE)}`, didYouMean(name, SELECTABLE)));
          ok = false;
        } else if (chosen.includes(name)) {
          out.push(error(span, `'${name}' is selected twice`));
          ok = false;
        } else {
          chosen.push(name);
        }
      }
      projections = chosen;
      projectionsSpan = selector.span;
    }
  }

  if (projections?.some((p) => (OUTSIDE_BLOCKS as readonly string[]).includes(p)) && layers) {
    out.push(error(layersSpan!, 'lm_head is not inside a block: an override of lm_head cannot select layers', 'write `override proj lm_head { … }` on its own'));
    ok = false;
  }
  if (!ok) return undefined;
  return {
    ...(layers ? { layers, layersSpan: layersSpan! } : {}),
    ...(projections ? { projections, projectionsSpan: projectionsSpan! } : {}),
  };
}
