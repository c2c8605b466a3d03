/** nn: modules, layers and optimisers. */
export { Module, describeLoad } from './module';
export type { LoadResult } from './module';
export { Conv2d, BatchNorm2d, ReLU, Linear, Sequential } from './layers';
export type { InitOptions } from './layers';
export { SGD } from './optim';
export type { SgdOptions } from './optim';
