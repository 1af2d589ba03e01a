// How a compiled linear kernel's binding holds a host array's rows × width values: the binding's
// element type (bf16 / fp16 activations, f32) and its row stride — a 2-D binding [T, width']
// may pad its rows (a padded K), a 1-D one is flat. Both cuda device ports lay inputs out so.
import { bindingNamed, shapeFor, type ManifestKernel } from '../../backends/manifest.ts';
import type { Activations } from '../device-port.ts';
import type { Layout } from './device-arrays.ts';

export function bindingLayout(kernel: ManifestKernel, name: string, shape: Activations): Layout {
  const binding = bindingNamed(kernel, name);
  const type = binding.elementType;
  if (type !== 'bf16' && type !== 'f16' && type !== 'f32') throw new Error(`kernel ${kernel.kernel}: ${binding.name} is ${type}, not an activation type`);
  const dims = shapeFor(binding, shape.rows);
  const stride = dims.length === 1 ? shape.width : dims.at(-1)!;
  if (stride < shape.width) throw new Error(`kernel ${kernel.kernel}: ${name} rows hold ${stride} values, the layer ${shape.width}`);
  return { encoding: type, rows: shape.rows, width: shape.width, stride };
}
