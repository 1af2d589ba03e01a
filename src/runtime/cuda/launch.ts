// The launch configuration a CUDA manifest gives (src/backends/emit-kernels.ts), evaluated for
// a token count T: grid formulas such as `ceil((4*T + 256) / 64)` and token ranges such as
// `1 <= T <= 63` or `T >= 64`. A runtime reads the manifest's text, not the compiler's IR, so
// this is the one place that text is parsed.

/** A CUDA kernel's manifest entry, as `qalc compile` writes it into manifest.json. */
export interface CudaManifestKernel {
  readonly kernel: string;
  readonly role: string;
  readonly target: 'cuda';
  readonly file: string;
  readonly layers: readonly string[];
  readonly constants: Readonly<Record<string, number | string | boolean>>;
  readonly bindings: readonly CudaManifestBinding[];
  readonly launchers: readonly string[];
  readonly launches: readonly CudaManifestLaunch[];
}

export interface CudaManifestBinding {
  readonly binding: number;
  readonly name: string;
  /** 'params' (binding 0: the run-time scalars), 'bf16', 'f16', 'f32', 'u32', … */
  readonly elementType: string;
  readonly shape: string;
  readonly access: string;
}

export interface CudaManifestLaunch {
  readonly symbol: string;
  readonly entryPoint: string;
  readonly tokens: string;
  readonly block: readonly [number, number, number];
  readonly grid: readonly [string, string, string];
  /** Static shared memory the kernel declares (the launch passes no dynamic shared memory). */
  readonly sharedBytes: number;
  /** A kernel launched first, on the same stream and with the same parameters (the forward's u/v prologue). */
  readonly prologue?: { readonly symbol: string; readonly block: readonly [number, number, number]; readonly grid: readonly [string, string, string] };
}

/**
 * Evaluates an integer formula in T: numbers, T, + - * /, parentheses and ceil(…). `/` is exact
 * division; ceil rounds its argument up, as the manifest's `ceil(count / per)` means.
 */
export function evaluateFormula(formula: string, tokens: number): number {
  const text = formula.replace(/\s+/g, '');
  let at = 0;
  const fail = (why: string): never => {
    throw new SyntaxError(`cannot evaluate launch formula '${formula}': ${why} at column ${at + 1}`);
  };
  const expression = (): number => {
    let value = term();
    while (text[at] === '+' || text[at] === '-') value = text[at++] === '+' ? value + term() : value - term();
    return value;
  };
  const term = (): number => {
    let value = factor();
    while (text[at] === '*' || text[at] === '/') value = text[at++] === '*' ? value * factor() : value / factor();
    return value;
  };
  const factor = (): number => {
    if (text.startsWith('ceil(', at)) {
      at += 5;
      const value = expression();
      if (text[at++] !== ')') fail('expected )');
      return Math.ceil(value);
    }
    if (text[at] === '(') {
      at++;
      const value = expression();
      if (text[at++] !== ')') fail('expected )');
      return value;
    }
    if (text[at] === 'T') {
      at++;
      return tokens;
    }
    const number = /^\d+(\.\d+)?/.exec(text.slice(at));
    if (number === null) return fail('expected a number, T, ( or ceil(');
    at += number[0].length;
    return Number(number[0]);
  };
  const value = expression();
  if (at !== text.length) fail('unexpected text');
  return value;
}

/** Whether T lies in a launch's range: `T >= 1`, `1 <= T <= 63`, `T <= 16`. */
export function tokensInRange(range: string, tokens: number): boolean {
  const text = range.replace(/\s+/g, '');
  const between = /^(\d+)<=T<=(\d+)$/.exec(text);
  if (between) return tokens >= Number(between[1]) && tokens <= Number(between[2]);
  const atLeast = /^T>=(\d+)$/.exec(text);
  if (atLeast) return tokens >= Number(atLeast[1]);
  const atMost = /^T<=(\d+)$/.exec(text);
  if (atMost) return tokens <= Number(atMost[1]);
  throw new SyntaxError(`cannot read the token range '${range}'`);
}

export interface ResolvedLaunch {
  readonly symbol: string;
  readonly grid: readonly [number, number, number];
  readonly block: readonly [number, number, number];
  readonly sharedBytes: number;
  /** Launched first (see CudaManifestLaunch.prologue), or null. */
  readonly prologue: { readonly symbol: string; readonly grid: readonly [number, number, number]; readonly block: readonly [number, number, number] } | null;
}

/** The launches of one entry point that apply to T (exactly one, or none when T is out of every range). */
export function launchFor(kernel: CudaManifestKernel, entryPoint: string, tokens: number): ResolvedLaunch | undefined {
  const launch = kernel.launches.find((l) => l.entryPoint === entryPoint && tokensInRange(l.tokens, tokens));
  if (launch === undefined) return undefined;
  const grid = launch.grid.map((g) => evaluateFormula(g, tokens)) as [number, number, number];
  const prologue = launch.prologue
    ? { symbol: launch.prologue.symbol, grid: launch.prologue.grid.map((g) => evaluateFormula(g, tokens)) as [number, number, number], block: launch.prologue.block }
    : null;
  return { symbol: launch.symbol, grid, block: launch.block, sharedBytes: launch.sharedBytes, prologue };
}

/** Entry points in the order a kernel's launches list them (adapter_grad: output grads, then input grads). */
export function entryPointsOf(kernel: CudaManifestKernel): string[] {
  return [...new Set(kernel.launches.map((l) => l.entryPoint))];
}
