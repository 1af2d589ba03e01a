// WGSL runs on this machine's WebGPU device (lavapipe on the CPU in CI) and agrees with a
// float64 reference. Sizes are ragged so bounds checks in the kernels are exercised.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWebGpu, type WebGpuHandle } from '../../src/runtime/webgpu/device.ts';
import {
  createComputePipeline,
  createStorage,
  dispatch,
  readFloat32,
  uploadStorage,
  uploadUniform,
} from '../../src/runtime/webgpu/buffers.ts';
import { skipWebGpu, webGpuName } from '../support/webgpu-driver.ts';

const axpbWgsl = /* wgsl */ `
struct Params { a: f32, b: f32, length: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < params.length) {
    y[id.x] = params.a * x[id.x] + params.b;
  }
}`;

const matmulWgsl = /* wgsl */ `
struct Shape { rows: u32, inner: u32, cols: u32 }
@group(0) @binding(0) var<storage, read> lhs: array<f32>;
@group(0) @binding(1) var<storage, read> rhs: array<f32>;
@group(0) @binding(2) var<storage, read_write> product: array<f32>;
@group(0) @binding(3) var<uniform> shape: Shape;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let row = id.y;
  let col = id.x;
  if (row >= shape.rows || col >= shape.cols) { return; }
  var sum = 0.0;
  for (var k = 0u; k < shape.inner; k++) {
    sum += lhs[row * shape.inner + k] * rhs[k * shape.cols + col];
  }
  product[row * shape.cols + col] = sum;
}`;

const halfWgsl = /* wgsl */ `
enable f16;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&x)) {
    y[id.x] = f32(f16(x[id.x]) * 2.0h);
  }
}`;

function axpbParams(a: number, b: number, length: number): Uint32Array {
  const params = new DataView(new ArrayBuffer(12));
  params.setFloat32(0, a, true);
  params.setFloat32(4, b, true);
  params.setUint32(8, length, true);
  return new Uint32Array(params.buffer);
}

/** Deterministic values in [-1, 1). */
function seededValues(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

// A full V8 collection without starting the process with --expose-gc.
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

let gpu: WebGpuHandle;

beforeAll(async () => {
  gpu = await openWebGpu();
  console.info('WebGPU adapter:', gpu.adapterInfo, { hasF16: gpu.hasF16 });
});

afterAll(() => gpu?.destroy());

describe.skipIf(skipWebGpu)(webGpuName('WebGPU on this machine'), () => {
  it('runs in a process with V8 optimisation capped', () => {
    expect(process.execArgv).toContain('--max-opt=2');
  });

  it('computes y = a*x + b over a ragged length', async () => {
    const length = 37;
    const [a, b] = [1.75, -0.5];
    const x = seededValues(length, 1);
    const { device } = gpu;
    const pipeline = await createComputePipeline(device, axpbWgsl);
    const y = createStorage(device, length);
    const params = uploadUniform(device, axpbParams(a, b, length));

    const workgroups = Math.ceil(length / 16);
    await dispatch(device, pipeline, [uploadStorage(device, x), y, params], [workgroups]);
    const got = await readFloat32(device, y, length);

    for (let i = 0; i < length; i++) {
      const expected = a * x[i] + b;
      const tolerance = 1e-6 * Math.max(1, Math.abs(expected));
      expect(Math.abs(got[i] - expected)).toBeLessThanOrEqual(tolerance);
    }
  });

  it('multiplies a 5x37 by a 37x13 f32 matrix', async () => {
    const [rows, inner, cols] = [5, 37, 13];
    const lhs = seededValues(rows * inner, 2);
    const rhs = seededValues(inner * cols, 3);
    const { device } = gpu;
    const pipeline = await createComputePipeline(device, matmulWgsl);
    const product = createStorage(device, rows * cols);
    const buffers = [
      uploadStorage(device, lhs),
      uploadStorage(device, rhs),
      product,
      uploadUniform(device, new Uint32Array([rows, inner, cols])),
    ];

    await dispatch(device, pipeline, buffers, [Math.ceil(cols / 8), Math.ceil(rows / 8)]);
    const got = await readFloat32(device, product, rows * cols);

    for (let row = 0; row < rows; row++) {
      for (let col = 0; col < cols; col++) {
        let expected = 0;
        let magnitude = 0;
        for (let k = 0; k < inner; k++) {
          expected += lhs[row * inner + k] * rhs[k * cols + col];
          magnitude += Math.abs(lhs[row * inner + k] * rhs[k * cols + col]);
        }
        const error = Math.abs(got[row * cols + col] - expected);
        expect(error).toBeLessThanOrEqual(1e-6 * magnitude + 1e-7);
      }
    }
  });

  it('runs f16 arithmetic when the device has shader-f16', async (context) => {
    if (!gpu.hasF16) context.skip();
    const length = 21;
    const x = seededValues(length, 4);
    const { device } = gpu;
    const pipeline = await createComputePipeline(device, halfWgsl);
    const y = createStorage(device, length);

    await dispatch(device, pipeline, [uploadStorage(device, x), y], [Math.ceil(length / 16)]);
    const got = await readFloat32(device, y, length);

    for (let i = 0; i < length; i++) {
      // f16 keeps 11 significant bits.
      expect(Math.abs(got[i] - 2 * x[i])).toBeLessThanOrEqual(2 ** -10 * Math.abs(2 * x[i]));
    }
  });

  it('survives a garbage collection while GPU work is pending', async () => {
    const { device } = gpu;
    const pipeline = await createComputePipeline(device, axpbWgsl);
    const y = createStorage(device, 5);
    const x = uploadStorage(device, new Float32Array([1, 2, 3, 4, 5]));
    const params = uploadUniform(device, axpbParams(2, 1, 5));
    const pending = dispatch(device, pipeline, [x, y, params], [1]);
    collectGarbage();
    await pending;
    collectGarbage();
    expect(Array.from(await readFloat32(device, y, 5))).toEqual([3, 5, 7, 9, 11]);
  });

  it('reports WGSL errors with their position', async () => {
    const broken = '@compute @workgroup_size(1) fn main() { let x: f32 = nope; }';
    await expect(createComputePipeline(gpu.device, broken)).rejects.toThrow(/wgsl:1:\d+: error:/);
  });
});
