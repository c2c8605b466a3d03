/**
 * The seed's ResNet-18 for CIFAR-10 (He et al., "Deep Residual Learning for Image Recognition", 2016, with the
 * usual CIFAR stem: one 3x3 stride-1 convolution and no max-pool, so 32x32 inputs reach the last stage at 4x4).
 *
 * Parameter names equal the seed's PyTorch state_dict keys: conv1.{0,1}, layerL.B.left.{0,1,3,4},
 * layerL.B.shortcut.{0,1}, fc. The ReLU modules occupy indices 2 (conv1.2, left.2) without parameters, exactly as
 * in the seed's nn.Sequential, so the numbering of the keys matches. Forward passes use the fused BatchNorm+ReLU
 * and add+ReLU ops: the same arithmetic as the seed's separate modules, in fewer passes over memory.
 */
import type { Backend, DType } from '../backend/backend';
import { getBackend } from '../backend';
import { addRelu, avgPool2d, flatten } from '../tensor';
import type { Tensor } from '../tensor/tensor';
import { BatchNorm2d, Conv2d, Linear, ReLU, Sequential, type InitOptions } from '../nn/layers';
import { Module } from '../nn/module';
import { Rng } from '../util/rng';

/** conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (identity, or conv1x1+BN when the shape changes), add, ReLU. */
export class BasicBlock extends Module {
  readonly left: Sequential;
  readonly shortcut: Sequential;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;

  constructor(inChannels: number, outChannels: number, stride: number, init: InitOptions) {
    super();
    this.conv1 = new Conv2d(inChannels, outChannels, 3, stride, 1, false, init);
    this.bn1 = new BatchNorm2d(outChannels, BN_EPS, 0.1, init);
    this.conv2 = new Conv2d(outChannels, outChannels, 3, 1, 1, false, init);
    this.bn2 = new BatchNorm2d(outChannels, BN_EPS, 0.1, init);
    this.left = this.registerModule('left', new Sequential(this.conv1, this.bn1, new ReLU(), this.conv2, this.bn2));
    this.shortcut = this.registerModule(
      'shortcut',
      hasProjection({ inChannels, outChannels, stride })
        ? new Sequential(new Conv2d(inChannels, outChannels, 1, stride, 0, false, init), new BatchNorm2d(outChannels, BN_EPS, 0.1, init))
        : new Sequential(),
    );
  }

  forward(x: Tensor): Tensor {
    const h = this.bn1.forwardFused(this.conv1.forward(x), true);
    const left = this.bn2.forward(this.conv2.forward(h));
    return addRelu(left, this.shortcut.forward(x));
  }
}

/** One residual block's channels and stride, as the seed's make_layer lays them out. */
export interface BlockPlan { inChannels: number; outChannels: number; stride: number }

/**
 * The four stages of ResNet-18 at first-stage width w: two blocks each, w, 2w, 4w, 8w channels, stride 2 in the
 * first block of layer2..4. The constructor builds from it and src/models/spec.ts derives the expected state-dict
 * shapes from it, so the two cannot disagree.
 */
/** Every BatchNorm2d's eps, and the side of the final average pooling (4x4 maps at a 32x32 input). */
export const BN_EPS = 1e-5;
export const HEAD_POOL = 4;

export function resnet18Stages(w: number): { name: string; blocks: BlockPlan[] }[] {
  const widths = [w, 2 * w, 4 * w, 8 * w];
  return widths.map((outChannels, i) => {
    const inChannels = i === 0 ? w : widths[i - 1];
    const stride = i === 0 ? 1 : 2;
    return {
      name: `layer${i + 1}`,
      blocks: [{ inChannels, outChannels, stride }, { inChannels: outChannels, outChannels, stride: 1 }],
    };
  });
}

/** The seed's block adds a conv1x1 + BN shortcut exactly when the block changes the shape. */
export function hasProjection(b: BlockPlan): boolean {
  return b.stride !== 1 || b.inChannels !== b.outChannels;
}

export interface ResNetOptions {
  numClasses?: number;
  /** seed of the initialisation generator (default 0) */
  seed?: number;
  backend?: Backend;
  /** float32 (default); float64 on the reference backend for numerical studies */
  dtype?: DType;
  /** channels of the first stage (default 64, the seed's); stages use w, 2w, 4w, 8w. Small widths make fast tests. */
  baseWidth?: number;
}

export class ResNet extends Module {
  readonly conv1: Sequential;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly fc: Linear;
  readonly numClasses: number;

  constructor(opts: ResNetOptions = {}) {
    super();
    const rng = new Rng(opts.seed ?? 0);
    const backend = opts.backend ?? getBackend();
    this.numClasses = opts.numClasses ?? 10;
    if (!Number.isInteger(this.numClasses) || this.numClasses < 1) {
      throw new Error(`resnet18: numClasses must be a positive integer, received ${opts.numClasses}`);
    }
    const init: InitOptions = { rng, backend, dtype: opts.dtype };
    const w = opts.baseWidth ?? 64;
    if (!Number.isInteger(w) || w < 1) throw new Error(`resnet18: baseWidth must be a positive integer, received ${w}`);
    this.conv1 = this.registerModule('conv1', new Sequential(
      new Conv2d(3, w, 3, 1, 1, false, init), new BatchNorm2d(w, BN_EPS, 0.1, init), new ReLU(),
    ));
    const [layer1, layer2, layer3, layer4] = resnet18Stages(w).map(({ name, blocks }) => this.registerModule(
      name, new Sequential(...blocks.map((b) => new BasicBlock(b.inChannels, b.outChannels, b.stride, init))),
    ));
    this.layer1 = layer1;
    this.layer2 = layer2;
    this.layer3 = layer3;
    this.layer4 = layer4;
    this.fc = this.registerModule('fc', new Linear(8 * w, this.numClasses, true, init));
  }

  /** x [N,3,32,32] normalised -> logits [N,numClasses] */
  forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== 3) {
      throw new Error(`resnet18: expected input [N,3,H,W], received [${x.shape.join(',')}]`);
    }
    const stem = this.conv1.layers[1] as BatchNorm2d;
    let out = stem.forwardFused(this.conv1.layers[0].forward(x), true);
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) out = layer.forward(out);
    if (out.shape[2] !== HEAD_POOL || out.shape[3] !== HEAD_POOL) {
      throw new Error(`resnet18: expected 32x32 inputs (a 4x4 map before pooling), received [${x.shape.join(',')}]`);
    }
    return this.fc.forward(flatten(avgPool2d(out, HEAD_POOL)));
  }
}

/** The state-dict key of a block's last batch-norm weight (γ of `left.4`), the one zero-initialised below. */
export const RESIDUAL_GAMMA = /^layer\d+\.\d+\.left\.4\.weight$/;

/**
 * Sets every BasicBlock's last batch-norm scale to 0 (torchvision's `zero_init_residual`; Goyal et al. 2017,
 * "Accurate, Large Minibatch SGD"): each block starts as its shortcut, so the network starts shallower and trains
 * faster early on. Returns how many tensors it zeroed (8 for ResNet-18).
 */
export function zeroInitResidual(model: ResNet): number {
  const sd = model.stateDict();
  let n = 0;
  for (const [k, t] of sd) {
    if (!RESIDUAL_GAMMA.test(k) || t.dtype === 'int64') continue;
    (t.data as Float32Array | Float64Array).fill(0);
    n++;
  }
  model.loadStateDict(sd);
  return n;
}

/** The seed's ResNet18(): CIFAR ResNet-18 with `numClasses` outputs (default 10). */
export function resnet18(opts: ResNetOptions = {}): ResNet {
  return new ResNet(opts);
}
