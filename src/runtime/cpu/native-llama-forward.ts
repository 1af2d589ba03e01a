// LlamaForward (src/model/llama-forward.ts) on the native CPU backend: the same interface —
// forward(token, pos) returns the logits — with the whole token computed in one call into
// qalc_cpu.node (native/llama-decoder.cc), which repeats LlamaForward's arithmetic in the same
// order. The weights are copied into the addon once; the KV cache lives there.
import { headDim } from '../../model/architecture.ts';
import type { Architecture } from '../../model/architecture.ts';
import type { DecodeModel } from '../../model/llama-forward.ts';
import type { Llama2cCheckpoint } from '../../model/llama2c-checkpoint.ts';
import { ropeTables } from '../typescript/rope.ts';
import { cpuAddon, type NativeDecoder } from './addon.ts';

export class NativeLlamaForward implements DecodeModel {
  readonly arch: Architecture;
  /** Logits of the last forward() call; overwritten by the next one. */
  readonly logits: Float32Array;
  private readonly decoder: NativeDecoder;

  constructor(checkpoint: Pick<Llama2cCheckpoint, 'arch' | 'tokenEmbedding' | 'layers' | 'rmsFinal' | 'classifier'>) {
    const arch = checkpoint.arch;
    this.arch = arch;
    this.logits = new Float32Array(arch.vocab);
    // The same float32 table steps as LlamaForward's constructor (run.c's).
    const rope = ropeTables(headDim(arch), arch.context, arch.ropeTheta);
    const layers = checkpoint.layers.map((w) => ({
      rmsAtt: w.rmsAtt.data, wq: w.wq.data, wk: w.wk.data, wv: w.wv.data, wo: w.wo.data,
      rmsFfn: w.rmsFfn.data, w1: w.w1.data, w2: w.w2.data, w3: w.w3.data,
    }));
    const { Decoder } = cpuAddon();
    this.decoder = new Decoder(
      arch, checkpoint.tokenEmbedding.data, layers, checkpoint.rmsFinal.data, checkpoint.classifier.data, rope.cos, rope.sin,
    );
  }

  forward(token: number, pos: number): Float32Array {
    this.decoder.forward(token, pos, this.logits);
    return this.logits;
  }
}
