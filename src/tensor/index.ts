/** The tensor layer's public surface: Tensor, scopes, grad mode and the differentiable ops. */
export { Tensor, Parameter, Node, tidy, keep, noGrad, isGradEnabled } from './tensor';
export type { Disposable } from './tensor';
export { conv2d } from './ops/conv';
export type { Conv2dOptions } from './ops/conv';
export { batchNorm2d } from './ops/norm';
export type { BatchNormOptions } from './ops/norm';
export { relu, add, addRelu, scale, sum } from './ops/eltwise';
export { avgPool2d } from './ops/pool';
export { reshape, flatten } from './ops/shape';
export { linear } from './ops/linear';
export { softmax, logSoftmax, crossEntropy } from './ops/loss';
export type { CrossEntropyOptions } from './ops/loss';
export * from './host';
