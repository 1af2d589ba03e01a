// The linear layers of a LLaMA model: their names and shapes (K = in-features, N = out-features).
import { headDim, type Architecture } from '../model/architecture.ts';
import { PROJECTIONS } from '../check/schema.ts';

export interface LinearLayer {
  /** qalc's name: `layers.3.down`, `lm_head`. */
  readonly name: string;
  /** The Hugging Face tensor prefix: `model.layers.3.mlp.down_proj`. */
  readonly hfName: string;
  readonly block: number | null;
  readonly projection: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** Where each projection sits in a Hugging Face LLaMA block. */
export const HF_PROJECTION_NAMES: Readonly<Record<string, string>> = {
  q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj',
};

function blockShape(arch: Architecture, projection: string): [number, number] {
  const kvDim = headDim(arch) * arch.kvHeads;
  switch (projection) {
    case 'q': case 'o': return [arch.dim, arch.dim];
    case 'k': case 'v': return [arch.dim, kvDim];
    case 'gate': case 'up': return [arch.dim, arch.hiddenDim];
    case 'down': return [arch.hiddenDim, arch.dim];
    default: throw new Error(`no projection '${projection}' in a LLaMA block`);
  }
}

/** Every linear layer in execution order: the seven projections of each block, then lm_head. */
export function linearLayers(arch: Architecture): LinearLayer[] {
  const layers: LinearLayer[] = [];
  for (let block = 0; block < arch.layers; block++) {
    for (const projection of PROJECTIONS) {
      const [inFeatures, outFeatures] = blockShape(arch, projection);
      layers.push({ name: `layers.${block}.${projection}`, hfName: `model.layers.${block}.${HF_PROJECTION_NAMES[projection]}`, block, projection, inFeatures, outFeatures });
    }
  }
  layers.push({ name: 'lm_head', hfName: 'lm_head', block: null, projection: 'lm_head', inFeatures: arch.dim, outFeatures: arch.vocab });
  return layers;
}

/** "down of layers 0..4", "q, k of layers 0, 2": a short name for a set of layers in messages. */
export function describeLayers(layers: readonly Pick<LinearLayer, 'block' | 'projection'>[]): string {
  const byProjection = new Map<string, number[]>();
  for (const layer of layers) {
    if (layer.block === null) { byProjection.set(layer.projection, []); continue; }
    const blocks = byProjection.get(layer.projection) ?? [];
    blocks.push(layer.block);
    byProjection.set(layer.projection, blocks);
  }
  // Projections that share the same blocks are named together.
  const byBlocks = new Map<string, string[]>();
  for (const [projection, blocks] of byProjection) {
    const key = ranges(blocks);
    byBlocks.set(key, [...(byBlocks.get(key) ?? []), projection]);
  }
  return [...byBlocks].map(([blocks, projections]) => blocks === '' ? projections.join(', ') : `${projections.join(', ')} of layer${blocks.includes(',') || blocks.includes('..') ? 's' : ''} ${blocks}`).join('; ');
}

function ranges(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}..${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}
