/**
 * Host tensors: plain typed arrays with a shape, the exchange format between the engine and everything that
 * reads or writes files (state dicts, checkpoints, PyTorch/safetensors/ONNX interop, fixtures).
 * Data is row-major (NCHW for 4-D), as PyTorch's contiguous tensors.
 */

export type HostDType = 'float32' | 'float64' | 'int64';

export interface HostTensor {
  readonly dtype: HostDType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array | BigInt64Array;
}

/** A model's parameters and buffers by PyTorch state_dict key, in registration order. */
export type StateDict = Map<string, HostTensor>;

export function hostNumel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function hostFloat32(shape: readonly number[], data?: Float32Array): HostTensor {
  const d = data ?? new Float32Array(hostNumel(shape));
  if (d.length !== hostNumel(shape)) {
    throw new Error(`hostFloat32: data has ${d.length} elements, shape [${shape.join(',')}] needs ${hostNumel(shape)}`);
  }
  return { dtype: 'float32', shape: [...shape], data: d };
}

export function hostInt64Scalar(v: bigint | number): HostTensor {
  return { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(v)) };
}
