/**
 * The kernel interface ("the seam") between the tensor/autograd layer and the compute backends.
 *
 * What it is: a small set of forward/backward kernels, enough to train the CIFAR ResNet-18, over opaque
 * storages. What it is not: a general tensor library; shapes, broadcasting and autograd live above it.
 *
 * Contract (both backends):
 * - A Storage holds `numel` elements of one dtype. Logically every tensor is row-major, NCHW for 4-D tensors.
 *   A backend may keep a storage in a private physical layout (the native backend keeps activations in
 *   oneDNN's blocked formats); `toArray` always returns plain row-major data.
 * - Kernels never modify their inputs unless their name says so (`...InPlace`, `sgdStep`, the running
 *   statistics of `batchNorm2d` in training mode). Every returned Storage is new and owned by the caller,
 *   who must `dispose` it exactly once.
 * - Shapes use the project's letters: N batch, C in-channels, K out-channels, H/W in, P/Q out, R/S kernel.
 * - The reference backend supports float32 and float64; the native backend float32 only.
 */

export type DType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;
export type Shape = readonly number[];

/** The flags of Backend.conv2dInfer, each false unless given. */
export interface InferConvOptions {
  chained?: boolean;
  direct?: boolean;
  consumeResidual?: boolean;
}

/** An opaque handle to a backend buffer. */
export interface Storage {
  readonly backend: string;
  readonly dtype: DType;
  readonly numel: number;
}

export interface Conv2dParams {
  /** [strideH, strideW] */
  readonly stride: readonly [number, number];
  /** [padH, padW], zeros, symmetric */
  readonly padding: readonly [number, number];
}

export interface BatchNormParams {
  readonly eps: number;
  /** running = (1 - momentum) * running + momentum * batch (PyTorch's convention); running_var uses the unbiased variance */
  readonly momentum: number;
  /** training: normalise with batch statistics and update the running ones; eval: use running statistics */
  readonly training: boolean;
  /** fuse a ReLU after the affine transform: y = max(0, bn(x)) */
  readonly relu: boolean;
}

/** What batchNorm2d saves for its backward pass; opaque to callers, owned by the caller (dispose it). */
export interface BatchNormSaved {
  readonly storages: readonly Storage[];
  /** backend-private data (not storages) */
  readonly extra?: unknown;
}

export interface Pool2dParams {
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
}

export interface SgdParams {
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
}

/**
 * The precision of convolutions and linear layers: fp32, or bf16 mixed precision with PyTorch CPU autocast's
 * semantics (bf16 inputs and weights, fp32 accumulation and outputs; everything else fp32). `auto` resolves to
 * bf16 where the backend can run it natively, fp32 elsewhere (`resolvePrecision` in ./precision.ts).
 */
export type Precision = 'fp32' | 'bf16';

export interface Backend {
  readonly name: string; // the name it is registered under (backend/index.ts)
  /** human-readable details: library versions, threads, ISA */
  describe(): string;
  /** The instruction sets its kernels run with here (e.g. "oneDNN avx512_core_bf16, ours avx512"). */
  isa(): string;
  /** Why bf16 cannot run on this backend here (names the missing instructions), or null when it can. */
  bf16Unavailable(): string | null;
  /** Sets the precision of later convolutions and linear layers; throws when bf16 is unavailable. */
  setPrecision(p: Precision): void;
  precision(): Precision;

  // ---- memory ----
  /** Copies plain row-major data into a new storage. */
  fromArray(data: FloatArray, shape: Shape): Storage;
  /** Returns a plain row-major copy (Float32Array for float32 storages, Float64Array for float64). */
  toArray(s: Storage, shape: Shape): FloatArray;
  zeros(shape: Shape, dtype: DType): Storage;
  /** Releases the memory now. Using a storage after dispose is an error. */
  dispose(s: Storage): void;
  /** A new storage with the same values, in plain row-major layout, viewed with `toShape` (same numel). */
  reshape(s: Storage, fromShape: Shape, toShape: Shape): Storage;

  // ---- elementwise ----
  /** a + b, same shapes */
  add(a: Storage, b: Storage, shape: Shape): Storage;
  /** a += b, same shapes (gradient accumulation) */
  addInPlace(a: Storage, b: Storage, shape: Shape): void;
  /** a * s */
  scale(a: Storage, s: number, shape: Shape): Storage;
  relu(x: Storage, shape: Shape): Storage;
  /** dx = dy where y > 0 else 0 (y is relu's output) */
  reluBackward(dy: Storage, y: Storage, shape: Shape): Storage;
  /** y = max(0, a + b): the residual join of a BasicBlock; backward is reluBackward(dy, y) to both inputs */
  addRelu(a: Storage, b: Storage, shape: Shape): Storage;
  /** sum of all elements (a JS number) */
  sum(a: Storage, shape: Shape): number;

  // ---- convolution: x [N,C,H,W], w [K,C,R,S], b [K] | null -> y [N,K,P,Q] ----
  conv2d(x: Storage, xShape: Shape, w: Storage, wShape: Shape, b: Storage | null, p: Conv2dParams): Storage;
  conv2dBackwardData(dy: Storage, w: Storage, xShape: Shape, wShape: Shape, p: Conv2dParams): Storage;
  /**
   * Inference only (no gradient): act(conv(x, w) + b [+ residual]), act = ReLU when `relu`, else identity; one
   * kernel where the backend can fuse it. The folded graph of src/models/inference.ts is built from it.
   * `chained`: the result is read only by further conv2dInfer calls (as x or residual), never by another op or
   * toArray, so the backend may store it in its compute precision (bf16 under bf16 on the native backend).
   * `direct`: direct convolutions only (no Winograd), whatever algorithm the backend would choose for this shape.
   * `consumeResidual`: the residual is disposed by the call (it must not be x), so the backend may write the
   * result into its buffer instead of copying it.
   */
  conv2dInfer(
    x: Storage, xShape: Shape, w: Storage, wShape: Shape, b: Storage, p: Conv2dParams, residual: Storage | null, relu: boolean,
    opts?: InferConvOptions,
  ): Storage;
  /**
   * Whether this backend picks convolution algorithms per shape by timing them one by one (the native backend's
   * `benchmark` policy). Such choices can lose as a whole at small batches, where a layer timed alone has its
   * weights in cache and a graph's layers evict each other's; the inference graph then checks them as a whole.
   */
  timesConvAlgos?(): boolean;
  /**
   * Decisions taken by timing above single kernels (the inference graph's whole-graph check), kept where the
   * backend keeps its convolution choices, so that every process on the machine decides alike: the value saved for
   * `key`, or undefined.
   */
  savedDecision?(key: string): string | undefined;
  /** Saves `value` for `key` unless another process saved one first; returns the value in force. */
  saveDecision?(key: string, value: string): string;
  /**
   * Inference only: the head of a classifier in one call, y [N,O] = mean of x [N,C,H,W] over H×W, times wᵀ [C,O],
   * plus b [O] (a global average pool, the flatten and the linear layer), computed in fp32.
   */
  poolLinearInfer(x: Storage, xShape: Shape, w: Storage, wShape: Shape, b: Storage): Storage;
  /** Promises that s is never written again (an inference graph's weights): the backend may cache its layouts. */
  freeze(s: Storage): void;
  conv2dBackwardWeights(
    dy: Storage, x: Storage, xShape: Shape, wShape: Shape, p: Conv2dParams, withBias: boolean,
  ): { dw: Storage; db: Storage | null };

  // ---- batch normalisation over [N,C,H,W], per channel C ----
  /** gamma, beta, runningMean, runningVar: [C]; running stats are updated in place when training. */
  batchNorm2d(
    x: Storage, shape: Shape, gamma: Storage, beta: Storage,
    runningMean: Storage, runningVar: Storage, p: BatchNormParams,
  ): { y: Storage; saved: BatchNormSaved };
  batchNorm2dBackward(
    dy: Storage, x: Storage, shape: Shape, gamma: Storage, beta: Storage, saved: BatchNormSaved, p: BatchNormParams,
  ): { dx: Storage; dgamma: Storage; dbeta: Storage };

  // ---- average pooling, zero padding counted in the divisor (PyTorch's count_include_pad=True) ----
  avgPool2d(x: Storage, xShape: Shape, p: Pool2dParams): Storage;
  avgPool2dBackward(dy: Storage, xShape: Shape, p: Pool2dParams): Storage;

  // ---- linear: x [N,I], w [O,I], b [O] | null -> y [N,O] = x w^T + b ----
  linear(x: Storage, xShape: Shape, w: Storage, wShape: Shape, b: Storage | null): Storage;
  linearBackward(
    dy: Storage, x: Storage, xShape: Shape, w: Storage, wShape: Shape, withBias: boolean,
  ): { dx: Storage; dw: Storage; db: Storage | null };

  // ---- softmax family over the last axis of [N,C] ----
  softmax(x: Storage, shape: Shape): Storage;
  logSoftmax(x: Storage, shape: Shape): Storage;
  /** dx = y * (dy - sum(dy * y)) per row, y = softmax(x) */
  softmaxBackward(dy: Storage, y: Storage, shape: Shape): Storage;
  /** dx = dy - exp(y) * sum(dy) per row, y = logSoftmax(x) */
  logSoftmaxBackward(dy: Storage, y: Storage, shape: Shape): Storage;
  /**
   * Mean cross-entropy of logits [N,C] against integer targets, with optional label smoothing ε
   * (PyTorch's: target distribution (1-ε)·onehot + ε/C). Returns the loss and the softmax probabilities
   * (saved for backward).
   */
  crossEntropy(logits: Storage, shape: Shape, targets: Int32Array, labelSmoothing: number): { loss: number; probs: Storage };
  /** d loss / d logits, times `gradOutput` (the upstream gradient of the scalar loss) */
  crossEntropyBackward(
    probs: Storage, shape: Shape, targets: Int32Array, labelSmoothing: number, gradOutput: number,
  ): Storage;

  // ---- optimiser ----
  /**
   * torch.optim.SGD's update for one parameter, in place on `param` and `momentumBuf`:
   *   g = grad + weightDecay * param
   *   if momentum: buf = g (first step, signalled by `firstStep`) else buf = momentum*buf + (1-dampening)*g;
   *                g = nesterov ? g + momentum*buf : buf
   *   param -= lr * g
   * `momentumBuf` is null when momentum is 0.
   */
  sgdStep(
    param: Storage, grad: Storage, momentumBuf: Storage | null, shape: Shape, p: SgdParams, firstStep: boolean,
  ): void;
}

/** Shape helpers shared by both backends. */
export function numelOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function convOutputShape(xShape: Shape, wShape: Shape, p: Conv2dParams): [number, number, number, number] {
  const [N, , H, W] = xShape;
  const [K, , R, S] = wShape;
  const P = Math.floor((H + 2 * p.padding[0] - R) / p.stride[0]) + 1;
  const Q = Math.floor((W + 2 * p.padding[1] - S) / p.stride[1]) + 1;
  return [N, K, P, Q];
}

export function poolOutputShape(xShape: Shape, p: Pool2dParams): [number, number, number, number] {
  const [N, C, H, W] = xShape;
  const P = Math.floor((H + 2 * p.padding[0] - p.kernel[0]) / p.stride[0]) + 1;
  const Q = Math.floor((W + 2 * p.padding[1] - p.kernel[1]) / p.stride[1]) + 1;
  return [N, C, P, Q];
}

/** torch.optim.SGD's rules for the hyperparameters, shared by both backends' sgdStep. */
export function checkSgdParams(op: string, p: SgdParams, hasBuf: boolean): void {
  for (const k of ['lr', 'momentum', 'dampening', 'weightDecay'] as const) {
    if (typeof p[k] !== 'number' || !Number.isFinite(p[k]) || p[k] < 0) {
      throw new Error(`${op}: expected ${k} to be a finite number >= 0, received ${String(p[k])}`);
    }
  }
  if (p.nesterov && (p.momentum <= 0 || p.dampening !== 0)) {
    throw new Error(`${op}: nesterov expects momentum > 0 and dampening 0, received momentum ${p.momentum}, dampening ${p.dampening}`);
  }
  if (p.momentum > 0 && !hasBuf) throw new Error(`${op}: expected a momentum buffer for momentum ${p.momentum}, received null`);
  if (p.momentum === 0 && hasBuf) throw new Error(`${op}: expected momentumBuf null for momentum 0, received a storage`);
}
