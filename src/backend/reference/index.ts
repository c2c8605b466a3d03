/**
 * The reference backend: every kernel of the `Backend` interface in plain TypeScript loops.
 *
 * What it is: the test oracle: readable, float32 and float64, one thread, PyTorch's semantics; the native
 * backend is checked against it. What it is not: fast enough to train on; use the native backend for that.
 * This file only assembles the kernels; each family lives in its own file beside it.
 * References: src/backend/backend.ts (the contract); llm.c's train_gpt2.c (a forward/backward pair per layer).
 */
import type { Backend } from '../backend';
import { convOutputShape } from '../backend';
import { REFERENCE_NAME, dispose, fromArray, reshape, toArray, zeros } from './storage';
import { add, addInPlace, addRelu, relu, reluBackward, scale, sum } from './eltwise';
import { conv2d, conv2dBackwardData, conv2dBackwardWeights } from './conv';
import { batchNorm2d, batchNorm2dBackward } from './batchnorm';
import { avgPool2d, avgPool2dBackward } from './pool';
import { linear, linearBackward } from './linear';
import { logSoftmax, logSoftmaxBackward, softmax, softmaxBackward } from './softmax';
import { crossEntropy, crossEntropyBackward } from './loss';
import { sgdStep } from './sgd';

export { RefStorage } from './storage';

export function createReferenceBackend(): Backend {
  return {
    name: REFERENCE_NAME,
    describe: () => 'reference: plain TypeScript loops, float32 and float64, single-threaded (the test oracle)',
    isa: () => 'JavaScript (no SIMD)',
    bf16Unavailable: () => 'bf16 needs the native backend (the reference backend computes in float32 or float64)',
    setPrecision(p) {
      if (p !== 'fp32') throw new Error(`precision: ${this.bf16Unavailable()}`);
    },
    precision: () => 'fp32',
    fromArray, toArray, zeros, dispose, reshape,
    add, addInPlace, scale, relu, reluBackward, addRelu, sum,
    conv2d, conv2dBackwardData, conv2dBackwardWeights,
    conv2dInfer(x, xShape, w, wShape, b, p, residual, act, opts) {
      if (opts?.consumeResidual && residual === x) throw new Error('conv2dInfer: a consumed residual cannot also be the input x');
      const y = conv2d(x, xShape, w, wShape, b, p);
      if (!residual && !act) return y;
      const yShape = convOutputShape(xShape, wShape, p);
      const out = residual ? (act ? addRelu(y, residual, yShape) : add(y, residual, yShape)) : relu(y, yShape);
      dispose(y);
      if (residual && opts?.consumeResidual) dispose(residual);
      return out;
    },
    poolLinearInfer(x, xShape, w, wShape, b) {
      const [n, c, hh, ww] = xShape;
      const pooled = avgPool2d(x, xShape, { kernel: [hh, ww], stride: [hh, ww], padding: [0, 0] });
      const flat = reshape(pooled, [n, c, 1, 1], [n, c]);
      dispose(pooled);
      const y = linear(flat, [n, c], w, wShape, b);
      dispose(flat);
      return y;
    },
    freeze: () => {},
    batchNorm2d, batchNorm2dBackward,
    avgPool2d, avgPool2dBackward,
    linear, linearBackward,
    softmax, logSoftmax, softmaxBackward, logSoftmaxBackward,
    crossEntropy, crossEntropyBackward,
    sgdStep,
  };
}
