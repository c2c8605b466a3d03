/**
 * Layers: Conv2d, BatchNorm2d, ReLU, Linear, Sequential, Identity, with PyTorch's parameter names and default
 * initialisation (torch.nn.init: kaiming_uniform_ with a=√5 for conv/linear weights, i.e. U(-1/√fan_in, 1/√fan_in),
 * the same bound for biases; BatchNorm weight 1, bias 0, running mean 0, running var 1), drawn from a seeded Rng.
 */
import type { Backend, DType, FloatArray } from '../backend/backend';
import { getBackend } from '../backend';
import { Parameter, Tensor } from '../tensor/tensor';
import { batchNorm2d, conv2d, linear, relu } from '../tensor';
import { Rng } from '../util/rng';
import { Module } from './module';

export interface InitOptions {
  rng?: Rng;
  backend?: Backend;
  /** float32 (default) or float64 (reference backend only: gradient checks and numerical studies) */
  dtype?: DType;
}

function filled(n: number, init: InitOptions, f: () => number): FloatArray {
  const data = init.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = f();
  return data;
}

function uniformParam(shape: number[], bound: number, rng: Rng, init: InitOptions): Parameter {
  const data = filled(shape.reduce((a, b) => a * b, 1), init, () => rng.uniformRange(-bound, bound));
  return Parameter.fromArray(data, shape, init.backend ?? getBackend());
}

function constParam(shape: number[], v: number, init: InitOptions): Parameter {
  return Parameter.fromArray(filled(shape.reduce((a, b) => a * b, 1), init, () => v), shape, init.backend ?? getBackend());
}

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number,
    readonly stride = 1, readonly padding = 0, withBias = true, init: InitOptions = {},
  ) {
    super();
    const rng = init.rng ?? new Rng(0);
    const bound = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    this.weight = this.registerParameter('weight', uniformParam([outChannels, inChannels, kernelSize, kernelSize], bound, rng, init));
    this.bias = withBias ? this.registerParameter('bias', uniformParam([outChannels], bound, rng, init)) : null;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  numBatchesTracked = 0;

  constructor(readonly numFeatures: number, readonly eps = 1e-5, readonly momentum = 0.1, init: InitOptions = {}) {
    super();
    const be = init.backend ?? getBackend();
    this.weight = this.registerParameter('weight', constParam([numFeatures], 1, init));
    this.bias = this.registerParameter('bias', constParam([numFeatures], 0, init));
    this.runningMean = this.registerBuffer('running_mean', Tensor.fromArray(filled(numFeatures, init, () => 0), [numFeatures], be));
    this.runningVar = this.registerBuffer('running_var', Tensor.fromArray(filled(numFeatures, init, () => 1), [numFeatures], be));
    this.registerCounter('num_batches_tracked', () => this.numBatchesTracked, (v) => { this.numBatchesTracked = v; });
  }

  forward(x: Tensor): Tensor {
    return this.forwardFused(x, false);
  }

  /** BatchNorm followed by ReLU when `withRelu` (one fused kernel). */
  forwardFused(x: Tensor, withRelu: boolean): Tensor {
    if (this.training) this.numBatchesTracked++;
    return batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: this.training, momentum: this.momentum, eps: this.eps, relu: withRelu,
    });
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, withBias = true, init: InitOptions = {}) {
    super();
    const rng = init.rng ?? new Rng(0);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', uniformParam([outFeatures, inFeatures], bound, rng, init));
    this.bias = withBias ? this.registerParameter('bias', uniformParam([outFeatures], bound, rng, init)) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Children named "0", "1", ... applied in order (an empty Sequential is the identity, as in PyTorch). */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  forward(x: Tensor): Tensor {
    let out = x;
    for (const m of this.layers) out = m.forward(out);
    return out;
  }

  get length(): number {
    return this.layers.length;
  }
}
