// Opens a WebGPU device in Node through Dawn (npm `webgpu`, which ships dawn.node).
// On a machine without a GPU, Dawn runs on Mesa's lavapipe Vulkan driver (see .ci/run).
// `webgpu` is an optional dependency (132 MB, five platforms' binaries), imported only when a
// device is opened: without it every other backend works, and this one says what to install.
type Dawn = typeof import('webgpu');

export interface WebGpuAdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  readonly subgroupMinSize: number | undefined;
  readonly subgroupMaxSize: number | undefined;
}

export interface WebGpuHandle {
  readonly device: GPUDevice;
  readonly adapterInfo: WebGpuAdapterInfo;
  /** The device was created with `shader-f16`, so WGSL may `enable f16;`. */
  readonly hasF16: boolean;
  /** The device was created with `subgroups`, so WGSL may use subgroup built-ins. */
  readonly hasSubgroups: boolean;
  destroy(): void;
}

export interface OpenWebGpuOptions {
  readonly powerPreference?: GPUPowerPreference;
  /** Options for Dawn's `create()`, e.g. `['backend=vulkan']`. */
  readonly dawnOptions?: readonly string[];
}

/**
 * Every Dawn instance this process created. Nothing else holds the object `create()` returns
 * once the device exists, and when V8 collects it Dawn frees the instance that pending GPU
 * waits still use: SIGSEGV in InstanceBase::ProcessEvents, `std::system_error: Invalid
 * argument`, futex errors, at whatever moment the GC runs (every time when `gc()` is called
 * after requestDevice, with or without `--max-opt=2`). A process opens few devices, so the
 * instances are kept for its lifetime.
 */
const openedInstances: GPU[] = [];

const requestedFeatures = ['shader-f16', 'subgroups'] as const satisfies readonly GPUFeatureName[];

let dawn: Promise<Dawn> | undefined;

function loadDawn(): Promise<Dawn> {
  dawn ??= import('webgpu').catch((e: unknown) => {
    dawn = undefined;
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw e;
    throw new Error('WebGPU: the optional package `webgpu` (Dawn for Node) is not installed: run `npm install webgpu`');
  });
  return dawn;
}

export async function openWebGpu(options: OpenWebGpuOptions = {}): Promise<WebGpuHandle> {
  const { create, globals } = await loadDawn();
  installWebGpuGlobals(globals);

  const gpu = create([...(options.dawnOptions ?? [])]);
  openedInstances.push(gpu);
  const adapter = await gpu.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : undefined,
  );
  if (!adapter) {
    throw new Error(
      'WebGPU: Dawn found no adapter. It needs a Vulkan driver: on a machine without a GPU ' +
        'install Mesa lavapipe >= 25 (Debian 12: `apt-get install -t bookworm-backports ' +
        'mesa-vulkan-drivers libvulkan1`; bookworm\'s own Mesa 22.3 is rejected by Dawn). ' +
        'On an NVIDIA GPU, install libvulkan1 and point VK_DRIVER_FILES at the NVIDIA ICD json.',
    );
  }

  const features = requestedFeatures.filter((feature) => adapter.features.has(feature));
  const device = await adapter.requestDevice({ requiredFeatures: features });
  return {
    device,
    adapterInfo: copyAdapterInfo(adapter.info),
    hasF16: device.features.has('shader-f16'),
    hasSubgroups: device.features.has('subgroups'),
    destroy: () => device.destroy(),
  };
}

/** Browsers define GPUBufferUsage, GPUMapMode, … globally; Node needs them put there. */
function installWebGpuGlobals(globals: Dawn['globals']): void {
  for (const [name, value] of Object.entries(globals)) {
    if (name in globalThis) continue;
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  }
}

// GPUAdapterInfo's fields are getters on a native object; copy them into a plain value.
function copyAdapterInfo(info: GPUAdapterInfo): WebGpuAdapterInfo {
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: info.isFallbackAdapter,
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
  };
}
