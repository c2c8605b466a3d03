/**
 * The public API of resnet-ts. The CLI (src/cli) and the server (src/serve) are thin layers over these exports.
 */
export {
  useBackend, getBackend, backendByName, withBackend, nativeUnavailableReason, registerBackend, registeredBackends,
} from './backend';
export type { Backend, BackendName } from './backend';
export * from './tensor';
export * from './nn';
export { resnet18, ResNet, BasicBlock } from './models/resnet';
export { CIFAR10_CLASSES, CIFAR10_CLASSES_ZH } from './predict/classes';
export type { ResNetOptions } from './models/resnet';
export { SEED_SPEC, buildModel, inferSpec, modelFromWeights, specForWeights } from './models';
export type { ModelSpec } from './models';
export { train } from './train/trainer';
export type { TrainOptions, TrainResult } from './train/trainer';
export { RECIPES } from './train/config';
export type { TrainConfig } from './train/config';
export { evaluate } from './train/evaluate';
export { loadWeights } from './interop/weights';
export { runBench } from './bench/model-bench';
export * as data from './data';
