// Checks the header of an `override`: which layers and projections it selects.
import { error, warning, type Diagnostic, type SourceSpan } from '../diagnostics/diagnostic.ts';
import { didYouMean, oneOf } from '../diagnostics/suggest.ts';
import type { Selector } from '../syntax/ast.ts';
import type { LayerSelector } from './checked-spec.ts';
import { NOT_LINEAR, OUTSIDE_BLOCKS, PROJECTIONS } from './schema.ts';

const SELECTABLE: readonly string[] = [...PROJECTIONS, ...OUTSIDE_BLOCKS];

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
        if (item.first >= layerCount) {
          out.push(warning(item.span, `layers ${item.first === item.last ? item.first : `${item.first}..${item.last}`} match nothing: the model has ${layerCount} layers (0..${layerCount - 1})`));
          continue;
        }
        if (item.last >= layerCount) {
          out.push(warning(item.span, `the model has ${layerCount} layers (0..${layerCount - 1}): layers ${layerCount}..${item.last} match nothing`));
        }
        for (let i = item.first; i <= Math.min(item.last, layerCount - 1); i++) chosen.add(i);
      }
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
