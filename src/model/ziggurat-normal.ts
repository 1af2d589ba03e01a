// Standard normal draws fast enough for a 7B model's 6.7 G random weights: Marsaglia and
// Tsang's ziggurat (2000, "The Ziggurat Method for Generating Random Variables", RNOR with 128
// layers, its tables in float64) over a splitmix32 stream (src/reference/random.ts's mixer,
// inlined). About 99% of draws take one 32-bit word, one table lookup, one compare and one
// multiply; the rest fall to the wedge or tail, which use Math.exp / Math.log. Box–Muller per
// element (a log, a sqrt and a cos per draw) was about 10x slower here.
//
// Deterministic: the tables are computed once with Math.exp / Math.log / Math.sqrt, which V8
// computes with its own fdlibm port (the same bits on every platform), and every draw is
// integer arithmetic then float64 products, so a (seed, length) pair gives the same floats on
// every machine. The layer index and the value share one word (the low 7 bits pick the layer),
// as in RNOR; with splitmix32's well-mixed words that costs nothing measurable.

const LAYERS = 128;
const R = 3.442619855899; // where the tail starts
const AREA = 9.91256303526217e-3; // of each layer
const M1 = 2147483648; // 2^31

const kn = new Float64Array(LAYERS); // |word| below kn[i]: inside layer i's rectangle
const wn = new Float64Array(LAYERS); // word × wn[i] = x
const fn = new Float64Array(LAYERS); // exp(−x_i²/2)
{
  let dn = R, tn = R;
  const q = AREA / Math.exp(-0.5 * dn * dn);
  kn[0] = Math.floor((dn / q) * M1);
  kn[1] = 0;
  wn[0] = q / M1;
  wn[LAYERS - 1] = dn / M1;
  fn[0] = 1;
  fn[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(AREA / dn + Math.exp(-0.5 * dn * dn)));
    kn[i + 1] = Math.floor((dn / tn) * M1);
    tn = dn;
    fn[i] = Math.exp(-0.5 * dn * dn);
    wn[i] = dn / M1;
  }
}

/** A splitmix32 stream: the state advanced by the golden ratio, each word mixed. */
class Words {
  constructor(private state: number) {}
  /** The next word as a signed 32-bit integer. */
  next(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return z ^ (z >>> 15);
  }
  /** Uniform in (0, 1]: never 0, so its log is finite. */
  uniform(): number {
    return ((this.next() >>> 0) + 1) / 4294967296;
  }
}

/** The rare draw outside layer `i`'s rectangle (RNOR's nfix): wedge, tail, or a fresh try. */
function slowDraw(words: Words, word: number, i: number): number {
  for (;;) {
    const x = word * wn[i]!;
    if (i === 0) {
      let tail: number, y: number;
      do {
        tail = -Math.log(words.uniform()) / R;
        y = -Math.log(words.uniform());
      } while (y + y < tail * tail);
      return word > 0 ? R + tail : -R - tail;
    }
    if (fn[i]! + words.uniform() * (fn[i - 1]! - fn[i]!) < Math.exp(-0.5 * x * x)) return x;
    word = words.next();
    i = word & (LAYERS - 1);
    if (Math.abs(word) < kn[i]!) return word * wn[i]!;
  }
}

/**
 * One seeded stream of std · N(0, 1) draws. Successive fills continue the stream, so filling an
 * array at once or row by row gives the same floats.
 */
export class NormalStream {
  private readonly words: Words;
  constructor(seed: number) {
    this.words = new Words(seed | 0);
  }

  /** The next out.length draws, times std (rounded to out's type). */
  fill(out: Float32Array, std = 1): void {
    const words = this.words;
    for (let j = 0; j < out.length; j++) {
      const word = words.next();
      const i = word & (LAYERS - 1);
      out[j] = std * (Math.abs(word) < kn[i]! ? word * wn[i]! : slowDraw(words, word, i));
    }
  }
}
