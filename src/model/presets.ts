// Named architectures, from the models' published configurations, so a spec can say
// `preset = llama2_7b` and compile without the weights.
import { LLAMA_ROPE_AND_NORM, type Architecture } from './architecture.ts';

const llama = (
  dim: number, hiddenDim: number, layers: number, heads: number, kvHeads: number, vocab: number, context: number, tiedEmbeddings = false,
  { ropeTheta, rmsNormEps }: Partial<Pick<Architecture, 'ropeTheta' | 'rmsNormEps'>> = {},
): Architecture => ({
  dim, hiddenDim, layers, heads, kvHeads, vocab, context, tiedEmbeddings,
  ropeTheta: ropeTheta ?? LLAMA_ROPE_AND_NORM.ropeTheta, rmsNormEps: rmsNormEps ?? LLAMA_ROPE_AND_NORM.rmsNormEps,
});
// LLaMA 1's params.json has norm_eps 1e-6 (LLaMA 2 went to 1e-5); LLaMA 3 has rope_theta 500000.
const LLAMA1_NORM = { rmsNormEps: 1e-6 };

export const PRESETS: Readonly<Record<string, Architecture>> = {
  llama_7b: llama(4096, 11008, 32, 32, 32, 32000, 2048, false, LLAMA1_NORM),
  llama_13b: llama(5120, 13824, 40, 40, 40, 32000, 2048, false, LLAMA1_NORM),
  llama_33b: llama(6656, 17920, 60, 52, 52, 32000, 2048, false, LLAMA1_NORM),
  llama_65b: llama(8192, 22016, 80, 64, 64, 32000, 2048, false, LLAMA1_NORM),
  llama2_7b: llama(4096, 11008, 32, 32, 32, 32000, 4096),
  llama2_13b: llama(5120, 13824, 40, 40, 40, 32000, 4096),
  llama2_70b: llama(8192, 28672, 80, 64, 8, 32000, 4096),
  llama3_8b: llama(4096, 14336, 32, 32, 8, 128256, 8192, false, { ropeTheta: 500000 }),
  // Karpathy's tinyllamas (llama2.c), trained on TinyStories; small enough for a CPU.
  stories260K: llama(64, 172, 5, 8, 4, 512, 512, true),
  stories15M: llama(288, 768, 6, 6, 6, 32000, 256, true),
  stories42M: llama(512, 1376, 8, 8, 8, 32000, 1024, true),
  stories110M: llama(768, 2048, 12, 12, 12, 32000, 1024, true),
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** `llama2-7b`, `LLaMA2_7B` and `llama2_7b` all name the same preset. */
export function findPreset(name: string): string | undefined {
  const wanted = name.toLowerCase().replace(/-/g, '_');
  return PRESET_NAMES.find((p) => p.toLowerCase() === wanted);
}
