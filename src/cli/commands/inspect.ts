import { UsageError, type Command } from '../usage.ts';

const STAGES = ['tokens', 'ast', 'checked', 'plan', 'ir', 'cuda', 'wgsl'] as const;
const TARGETS = ['cuda', 'wgsl', 'ptx'] as const;

/** JSON that can hold the checker's Maps. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v), 2) + '\n';
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show what the compiler made of a spec after any stage: tokens, ast, checked, the plan (default: a table of every linear layer with its size in MiB; --json for JSON), the kernel IR after each lowering pass, the list of CUDA or WGSL kernels (--sources: every source, each under its file name), or one kernel\'s source (--kernel NAME, also as PTX). --html writes one self-contained page (no network) with the spec, each line linked to the plan rows and kernels it produced, the size table, and every kernel\'s highlighted source.',
  usage: `qalc inspect SPEC [--stage ${STAGES.join('|')}] [--json] [--all] [--pass NAME] [--sources] [--kernel NAME [--target ${TARGETS.join('|')}]] [--html [FILE]]`,
  options: {
    stage: { type: 'string', default: 'plan' },
    json: { type: 'boolean' },
    all: { type: 'boolean' },
    pass: { type: 'string' },
    sources: { type: 'boolean' },
    kernel: { type: 'string' },
    target: { type: 'string' },
    html: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    stage: `the stage to show: ${STAGES.join(', ')}`,
    json: 'print the plan as JSON instead of a table',
    all: 'one table row per layer instead of grouping identical ones',
    pass: 'with --stage ir: the IR after this pass only (default: after every pass; with --target cuda the CUDA pass too)',
    sources: 'with --stage cuda or wgsl: print every kernel\'s source, not only the list',
    kernel: 'print this kernel\'s source (names as in --stage cuda or wgsl)',
    target: 'with --stage ir or --kernel: cuda (default), wgsl, or ptx (needs nvcc)',
    html: 'write the HTML page to FILE (default: standard output); --all applies to its table',
    help: 'show this help',
  },
  optionalValues: { html: 'FILE' },
  async run(positionals, values) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { frontEnd } = await import('../../compile.ts');
    const { reportDiagnostics } = await import('../report.ts');
    if (positionals.length !== 1) {
      const tookSpec = positionals.length === 0 && typeof values.html === 'string';
      throw new UsageError(`inspect takes exactly one spec file${tookSpec ? ` (--html took '${values.html}' as the page to write: put the spec first, qalc inspect SPEC --html [FILE])` : ''}`, 'inspect');
    }
    if (values.html !== undefined) {
      const clash = (['json', 'pass', 'sources', 'kernel', 'target'] as const).find((o) => values[o] !== undefined) ?? (values.stage !== 'plan' ? 'stage' : undefined);
      if (clash) throw new UsageError(`--html shows every stage on one page: it takes no --${clash}`, 'inspect');
    }
    const stage = values.stage as string;
    if (!(STAGES as readonly string[]).includes(stage)) throw new UsageError(`unknown stage '${stage}': expected ${STAGES.join(', ')}`, 'inspect');
    const target = (values.target as string | undefined) ?? (stage === 'wgsl' ? 'wgsl' : 'cuda');
    if (!(TARGETS as readonly string[]).includes(target)) throw new UsageError(`unknown target '${target}': expected ${TARGETS.join(', ')}`, 'inspect');
    const result = frontEnd(positionals[0]!);
    const status = reportDiagnostics(result);
    const out = (text: string) => process.stdout.write(text);
    if (stage === 'tokens') {
      const { qalLexer } = await import('../../../grammars/qal/tokens.ts');
      const file = result.loaded.files[0];
      if (file) out(qalLexer.tokenize(file.text).tokens.map((t) => `${t.startLine}:${t.startColumn} ${t.tokenType.name} ${JSON.stringify(t.image)}`).join('\n') + '\n');
      return status;
    }
    if (stage === 'ast') {
      out(toJson(result.loaded.statements));
      return status;
    }
    if (stage === 'checked') {
      if (result.checked) out(toJson(result.checked));
      return status;
    }
    const plan = result.plan;
    if (!plan) return status;
    if (values.html !== undefined) return writeHtml(plan, result.sources, values.html, values.all === true, status);
    if (values.kernel !== undefined) return printKernel(plan, String(values.kernel), target as (typeof TARGETS)[number]);
    if (stage === 'plan') {
      const { renderPlanTable } = await import('../plan-table.ts');
      out(values.json ? toJson(plan) : renderPlanTable(plan, values.all === true));
      return status;
    }
    if (stage === 'ir') {
      const { lowerPlanWithTrace, dumpProgram } = await import('../../ir/lower.ts');
      // For CUDA the trace ends with its own pass (tile shapes, decode shape and weight access, launches).
      const { trace } = lowerPlanWithTrace(plan, target === 'wgsl' ? 'wgsl' : 'cuda');
      const pass = values.pass as string | undefined;
      const shown = pass === undefined ? trace : trace.filter((t) => t.pass === pass);
      if (shown.length === 0) throw new UsageError(`no pass '${pass}': the passes are ${trace.map((t) => t.pass).join(', ')}`, 'inspect');
      for (const t of shown) out(`// after ${t.pass}\n${dumpProgram(t.program)}`);
      return status;
    }
    const { emitKernels } = await import('../../backends/emit-kernels.ts');
    const kernels = emitKernels(plan);
    const list = stage === 'cuda' ? kernels.cuda : kernels.wgsl;
    if (list.length === 0) process.stderr.write(`spec ${plan.spec} has no ${stage} target\n`);
    const ops = stage === 'cuda' ? kernels.cudaOps : [];
    if (values.sources) for (const k of [...list, ...ops]) out(`// ===== ${stage}/${k.fileName}\n${k.source}${k.source.endsWith('\n') ? '' : '\n'}`);
    else {
      for (const k of list) out(`${k.kernel.name.padEnd(56)} ${k.kernel.role.padEnd(14)} ${k.kernel.layers.length} layers  ${k.kernel.sources.join(' ')}\n`);
      for (const k of ops) out(`${k.kernel.kernel.padEnd(56)} ${k.kernel.op.padEnd(14)} model op  ${k.kernel.entryPoints.map((e) => e.name).join(', ')}\n`);
    }
    return status;
  },
};

async function printKernel(plan: import('../../plan/plan.ts').Plan, name: string, target: (typeof TARGETS)[number]): Promise<number> {
  const { emitKernels } = await import('../../backends/emit-kernels.ts');
  const kernels = emitKernels(plan);
  // The CUDA model ops (cuda/ops/NAME.cu) are found by their kernel name or file name too.
  const list: readonly { readonly name: string; readonly fileName: string; readonly source: string }[] = target === 'wgsl'
    ? kernels.wgsl.map((k) => ({ name: k.kernel.name, fileName: k.fileName, source: k.source }))
    : [...kernels.cuda.map((k) => ({ name: k.kernel.name, fileName: k.fileName, source: k.source })), ...kernels.cudaOps.map((k) => ({ name: k.kernel.kernel, fileName: k.fileName, source: k.source }))];
  const found = list.find((k) => k.name === name || k.fileName === name || (k.fileName.startsWith('ops/') && k.fileName.slice('ops/'.length) === name));
  if (!found) {
    const { didYouMean } = await import('../../diagnostics/suggest.ts');
    const names = list.map((k) => k.name);
    throw new UsageError(`no ${target === 'wgsl' ? 'WGSL' : 'CUDA'} kernel '${name}' in spec ${plan.spec}${names.length ? `; ${didYouMean(name, names) ?? `try --stage ${target === 'wgsl' ? 'wgsl' : 'cuda'} for the list`}` : ''}`, 'inspect');
  }
  if (target === 'ptx') {
    const { ptxOf } = await import('../../backends/cuda/ptx.ts');
    process.stdout.write(await ptxOf(found.fileName.replace(/^ops\//, ''), found.source));
  } else {
    process.stdout.write(found.source);
  }
  return 0;
}

async function writeHtml(plan: import('../../plan/plan.ts').Plan, sources: ReadonlyMap<string, string>, file: string | boolean, all: boolean, status: number): Promise<number> {
  const { emitKernels } = await import('../../backends/emit-kernels.ts');
  const { renderInspectPage } = await import('../inspect-html/render-page.ts');
  const kernels = emitKernels(plan);
  const page = renderInspectPage({ plan, sources, kernels, all });
  if (typeof file !== 'string') {
    process.stdout.write(page);
    return status;
  }
  const { resolve } = await import('node:path');
  if ([...sources.keys()].some((s) => resolve(s) === resolve(file))) throw new UsageError(`--html ${file} would overwrite the spec itself: name the page's own file`, 'inspect');
  const { writeFileAtomic } = await import('../../write-file.ts');
  writeFileAtomic(file, page);
  process.stderr.write(`wrote ${file}: the spec, ${plan.layers.length} layers, ${kernels.cuda.length} CUDA and ${kernels.wgsl.length} WGSL kernels\n`);
  return status;
}
