// The browser side of test/browser/generated-kernels.browser.test.ts: bundled by esbuild and
// loaded in headless Chromium, it runs stories260K's down-projection forward kernel through the
// same generated descriptor (generated/stories260k/kernels.mts) and the same runWgslKernel that
// the Node tests use, on the page's own navigator.gpu. Inputs come from the test's server
// (inputs.json), the WGSL from the path the descriptor names; the outputs go back to Node as
// plain number arrays (float32 values, so JSON carries them exactly).
import { wgslForwardK172N64B4G43QaloraR4MeanF32 as forward } from '../../generated/stories260k/kernels.mts';
import type { WebGpuAdapterInfo, WebGpuHandle } from '../../src/runtime/webgpu/device.ts';
import { runWgslKernel } from '../../src/runtime/webgpu/run-kernel.ts';

/** What the test serves at /inputs.json. */
export interface BrowserForwardInputs {
  tokens: number;
  adapterScale: number;
  input: number[];
  qweight: number[];
  groupScalesAndZeros: number[];
  adapterWeights: number[];
}

/** What window.qalcRunForward() resolves to. */
export interface BrowserForwardResult {
  userAgent: string;
  adapterInfo: WebGpuAdapterInfo;
  features: string[];
  hasF16: boolean;
  output: number[];
  pooledInput: number[];
  adapterActivation: number[];
}

// tsconfig's lib has no DOM; these are the only page globals used here.
declare const navigator: { readonly gpu?: GPU; readonly userAgent: string };
declare function fetch(url: string): Promise<{ ok: boolean; status: number; text(): Promise<string>; json(): Promise<unknown> }>;

async function openPageGpu(): Promise<WebGpuHandle> {
  if (!navigator.gpu) throw new Error('navigator.gpu is missing: this page has no WebGPU (is --enable-unsafe-webgpu set?)');
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null');
  const features = (['shader-f16', 'subgroups'] as const).filter((feature) => adapter.features.has(feature));
  const device = await adapter.requestDevice({ requiredFeatures: features });
  const info = adapter.info;
  return {
    device,
    adapterInfo: {
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      isFallbackAdapter: info.isFallbackAdapter, subgroupMinSize: info.subgroupMinSize, subgroupMaxSize: info.subgroupMaxSize,
    },
    hasF16: device.features.has('shader-f16'),
    hasSubgroups: device.features.has('subgroups'),
    destroy: () => device.destroy(),
  };
}

async function fetchOk(url: string) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response;
}

async function runForward(): Promise<BrowserForwardResult> {
  const inputs = (await (await fetchOk('/inputs.json')).json()) as BrowserForwardInputs;
  const wgsl = await (await fetchOk(`/${forward.file}`)).text();
  const gpu = await openPageGpu();
  try {
    const out = await runWgslKernel(gpu, forward, wgsl, {
      input: Float32Array.from(inputs.input),
      qweight: Uint32Array.from(inputs.qweight),
      groupScalesAndZeros: Float32Array.from(inputs.groupScalesAndZeros),
      adapterWeights: Float32Array.from(inputs.adapterWeights),
    }, { tokens: inputs.tokens, adapterScale: inputs.adapterScale }, inputs.tokens);
    return {
      userAgent: navigator.userAgent,
      adapterInfo: gpu.adapterInfo,
      features: [...gpu.device.features].map(String).sort(),
      hasF16: gpu.hasF16,
      output: Array.from(out.output!),
      pooledInput: Array.from(out.pooledInput!),
      adapterActivation: Array.from(out.adapterActivation!),
    };
  } finally {
    gpu.destroy();
  }
}

(globalThis as unknown as { qalcRunForward: typeof runForward }).qalcRunForward = runForward;
