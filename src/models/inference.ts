/**
 * The inference graph of the seed's ResNet-18: built once from trained weights, then only run forward.
 *
 * What it is: every convolution with its batch norm folded in (eval-mode batch norm is an affine map per channel:
 * w'[k] = w[k]·γ_k/√(σ²_k+ε), b'_k = β_k − μ_k·γ_k/√(σ²_k+ε), computed in float64), run by the backend's
 * `conv2dInfer`, which applies the bias, a BasicBlock's residual add and its ReLU in the same kernel (oneDNN post-ops
 * on the native backend). The folded weights are frozen, so the native backend reorders each into its kernel's
 * layout once and keeps it. Numerically it is the eval-mode model (test/models/inference.test.ts: logits within
 * 1e-4 relative in fp32); it follows the backend's precision like everything else (bf16 convolutions under bf16,
 * and under bf16 the activations between convolutions are kept in bf16: `chained`, all but the last block's output).
 * What it is not: trainable (no autograd, no batch statistics), nor an exporter (src/interop/onnx.ts).
 * References: the model it mirrors, src/models/resnet.ts; Ioffe & Szegedy 2015 (batch norm in inference).
 */
import { convOutputShape, type Backend, type Shape, type Storage } from '../backend/backend';
import type { HostTensor, StateDict } from '../tensor/host';
import { BN_EPS, HEAD_POOL as POOL, hasProjection, resnet18Stages } from './resnet';

/** A convolution with its batch norm folded in: frozen weights and bias on the backend. */
interface FusedConv {
  readonly w: Storage;
  readonly wShape: Shape;
  readonly b: Storage;
  readonly stride: number;
  readonly pad: number;
}

interface Block {
  readonly conv1: FusedConv;
  readonly conv2: FusedConv;
  readonly shortcut: FusedConv | null;
}


function tensor(sd: StateDict, key: string): HostTensor {
  const t = sd.get(key);
  if (!t || t.dtype === 'int64') throw new Error(`inference graph: the weights have no float tensor ${key}`);
  return t;
}

/** conv `c` (key prefix of its weight) folded with batch norm `bn` (key prefix) into frozen backend storages. */
function fold(be: Backend, sd: StateDict, c: string, bn: string, stride: number): FusedConv {
  const w = tensor(sd, `${c}.weight`);
  const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => tensor(sd, `${bn}.${k}`).data);
  const K = w.shape[0];
  const per = w.data.length / K;
  const wf = new Float32Array(w.data.length);
  const bf = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    const s = Number(gamma[k]) / Math.sqrt(Number(variance[k]) + BN_EPS);
    for (let i = 0; i < per; i++) wf[k * per + i] = Number(w.data[k * per + i]) * s;
    bf[k] = Number(beta[k]) - Number(mean[k]) * s;
  }
  const ws = be.fromArray(wf, w.shape);
  const bs = be.fromArray(bf, [K]);
  be.freeze(ws);
  be.freeze(bs);
  return { w: ws, wShape: w.shape, b: bs, stride, pad: w.shape[2] === 3 ? 1 : 0 };
}

/** One whole-graph check (InferenceGraph.directWins): the fastest forward with each layer's chosen algorithm and with oneDNN direct in all. */
export interface WholeGraphCheck {
  batch: number;
  chosenMs: number;
  directMs: number;
}

/** The batch sizes up to which the graph checks the per-layer algorithm choices as a whole (see directWins). */
export const WHOLE_GRAPH_CHECK_MAX = 16;
/** Forwards of each kind the check times: more at the smallest batches, whose forwards are short and noisier. */
const wholeGraphRuns = (batch: number): number => Math.max(5, Math.round(32 / batch));

/**
 * The whole-graph decisions (directWins), keyed by backend, precision, the network's convolution shapes and the input
 * shape: shared by every graph of the same network, as the per-layer choices are, so that two graphs of the same
 * weights (a classifier with TTA and one without, say) give bit-identical logits. Where the backend keeps decisions
 * (the native one: in its convolution cache file, beside the per-layer choices), they are shared by every process of
 * the machine too: a server's inference process gives the logits of a `predict` run, bit for bit, whatever the load
 * was when each of them would have timed the check. This map is the process's copy.
 */
const directAt = new Map<string, boolean>();

export class InferenceGraph {
  private readonly checks: WholeGraphCheck[] = [];
  /** every convolution's weight shape and stride, in order: which network this is, for directAt */
  private readonly network: string;

  private constructor(
    private readonly be: Backend,
    private readonly stem: FusedConv,
    private readonly blocks: readonly Block[],
    private readonly fc: { w: Storage; wShape: Shape; b: Storage },
  ) {
    this.network = this.convs().map((c) => `${c.wShape.join('x')}s${c.stride}`).join(';');
  }

  /** Every convolution of the graph, in order. */
  private convs(): FusedConv[] {
    return [this.stem, ...this.blocks.flatMap((b) => [b.conv1, b.conv2, ...(b.shortcut ? [b.shortcut] : [])])];
  }

  /** The graph of a ResNet-18 state dict (any width and class count), on `be`. */
  static fromStateDict(sd: StateDict, be: Backend): InferenceGraph {
    const stem = fold(be, sd, 'conv1.0', 'conv1.1', 1);
    // the model's own stage plan (strides, which blocks project their shortcut), read at the weights' width
    const blocks: Block[] = resnet18Stages(tensor(sd, 'conv1.0.weight').shape[0]).flatMap(({ name, blocks: plan }) =>
      plan.map((b, i) => {
        const p = `${name}.${i}`;
        return {
          conv1: fold(be, sd, `${p}.left.0`, `${p}.left.1`, b.stride),
          conv2: fold(be, sd, `${p}.left.3`, `${p}.left.4`, 1),
          shortcut: hasProjection(b) ? fold(be, sd, `${p}.shortcut.0`, `${p}.shortcut.1`, b.stride) : null,
        };
      }));
    const fw = tensor(sd, 'fc.weight');
    const fcW = be.fromArray(Float32Array.from(fw.data as Float32Array), fw.shape);
    const fcB = be.fromArray(Float32Array.from(tensor(sd, 'fc.bias').data as Float32Array), [fw.shape[0]]);
    be.freeze(fcW);
    be.freeze(fcB);
    return new InferenceGraph(be, stem, blocks, { w: fcW, wShape: fw.shape, b: fcB });
  }

  /** The whole-graph checks this graph made (bench --profile prints them; a graph that found its decision made by
   * an earlier graph of the same network, in this process or saved by the backend, has none). */
  wholeGraphChecks(): readonly WholeGraphCheck[] {
    return this.checks;
  }

  get numClasses(): number {
    return this.fc.wShape[0];
  }

  /** `chained`: the result feeds only further convolutions (see Backend.conv2dInfer), not the pooling head */
  private conv(
    x: Storage, xShape: Shape, c: FusedConv, residual: Storage | null, relu: boolean, direct: boolean, chained = true,
  ): [Storage, Shape] {
    const p = { stride: [c.stride, c.stride] as [number, number], padding: [c.pad, c.pad] as [number, number] };
    // a residual is never needed after its block's last convolution: the result may take its buffer
    const y = this.be.conv2dInfer(x, xShape, c.w, c.wShape, c.b, p, residual, relu, { chained, direct, consumeResidual: residual !== null });
    return [y, convOutputShape(xShape, c.wShape, p)];
  }

  /** Logits [n, classes] of n normalised images x [n,3,H,W] (row-major), as the eval-mode model gives them. */
  forward(x: Float32Array, shape: Shape): Float32Array {
    if (shape[0] > WHOLE_GRAPH_CHECK_MAX || !this.be.timesConvAlgos?.()) return this.run(x, shape, false);
    const key = `${this.be.name}|${this.be.precision()}|${shape.join(',')}|${this.network}`;
    let direct = directAt.get(key);
    if (direct === undefined) {
      const saved = this.be.savedDecision?.(key);
      if (saved === 'direct' || saved === 'chosen') direct = saved === 'direct';
      else {
        const mine = this.directWins(x, shape) ? 'direct' : 'chosen';
        // another process may have saved its decision meanwhile: then both take that one
        direct = (this.be.saveDecision?.(key, mine) ?? mine) === 'direct';
      }
      directAt.set(key, direct);
    }
    return this.run(x, shape, direct);
  }

  /**
   * Whether, at this batch size, the graph runs faster with oneDNN direct in every layer than with the algorithms
   * the backend chose layer by layer. Only asked where those were timed one layer at a time and the batch is small
   * (at most WHOLE_GRAPH_CHECK_MAX images): there a layer timed alone finds its weights in cache, while in the graph
   * ResNet-18's 45 MB of fp32 weights evict each other, and a Winograd layer's larger transformed weights and its
   * blocked layout (reorders on both sides) can cost more than it saved. Measured once per batch size: a warm-up of
   * each, then wholeGraphRuns forwards of each (32 at batch 1), alternating; the fastest run of each decides, direct on
   * a tie. The fastest, not the median: the decision is saved for every later process, and load on the machine only
   * ever adds time, so the minimum is the figure a busy moment disturbs least. (On an AMD EPYC with AVX-512 a median of
   * 16 once saved direct, and batch-1 latency stayed at 7-10 ms until the cache file was deleted; fresh checks chose
   * the per-layer choices, 5.5-7 ms.)
   */
  private directWins(x: Float32Array, shape: Shape): boolean {
    const fastest = [Infinity, Infinity]; // [per-layer choices, direct]
    for (let i = -1; i < wholeGraphRuns(shape[0]); i++) {
      for (const d of [0, 1]) {
        const t0 = performance.now();
        this.run(x, shape, d === 1);
        if (i >= 0) fastest[d] = Math.min(fastest[d], performance.now() - t0);
      }
    }
    const check = { batch: shape[0], chosenMs: fastest[0], directMs: fastest[1] };
    this.checks.push(check);
    return check.directMs <= check.chosenMs;
  }

  private run(x: Float32Array, shape: Shape, direct: boolean): Float32Array {
    const be = this.be;
    const input = be.fromArray(x, shape);
    let [h, hShape] = this.conv(input, shape, this.stem, null, true, direct);
    be.dispose(input);
    this.blocks.forEach((blk, i) => {
      const [a, aShape] = this.conv(h, hShape, blk.conv1, null, true, direct);
      const [sc] = blk.shortcut ? this.conv(h, hShape, blk.shortcut, null, false, direct) : [h];
      const [out, outShape] = this.conv(a, aShape, blk.conv2, sc, true, direct, i < this.blocks.length - 1);
      be.dispose(a);
      if (sc !== h) be.dispose(h); // sc, the residual, was consumed by conv2 (h itself where the shortcut is identity)
      h = out;
      hShape = outShape;
    });
    const logits = this.head(h, hShape);
    be.dispose(h);
    const out = be.toArray(logits, [hShape[0], this.numClasses]) as Float32Array;
    be.dispose(logits);
    return out;
  }
  /** Logits of the last block's output: pool, flatten and linear, in one call where the pool covers the whole map. */
  private head(h: Storage, hShape: Shape): Storage {
    const be = this.be;
    const n = hShape[0], C = hShape[1];
    if (hShape[2] === POOL && hShape[3] === POOL) return be.poolLinearInfer(h, hShape, this.fc.w, this.fc.wShape, this.fc.b);
    const pooled = be.avgPool2d(h, hShape, { kernel: [POOL, POOL], stride: [POOL, POOL], padding: [0, 0] });
    const pooledShape = [n, C, Math.floor(hShape[2] / POOL), Math.floor(hShape[3] / POOL)];
    const flatShape = [n, C * pooledShape[2] * pooledShape[3]];
    const flat = be.reshape(pooled, pooledShape, flatShape);
    be.dispose(pooled);
    const logits = be.linear(flat, flatShape, this.fc.w, this.fc.wShape, this.fc.b);
    be.dispose(flat);
    return logits;
  }


  dispose(): void {
    for (const c of this.convs()) {
      this.be.dispose(c.w);
      this.be.dispose(c.b);
    }
    this.be.dispose(this.fc.w);
    this.be.dispose(this.fc.b);
  }
}
