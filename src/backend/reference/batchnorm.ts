/**
 * Reference backend: 2-D batch normalisation over [N,C,H,W] per channel, with an optional fused ReLU.
 *
 * What it is: PyTorch's nn.BatchNorm2d semantics. Training normalises with the batch mean and the biased
 * variance (eps inside the square root) and updates the running statistics in place with the unbiased
 * variance; eval normalises with the running statistics, which backward then treats as constants.
 * What it is not: a layer (no parameters are owned here) and not fast.
 * References: Ioffe & Szegedy 2015 (arXiv:1502.03167), eq. in Alg. 1 and its backward; PyTorch BatchNorm2d docs.
 */
import type { BatchNormParams, BatchNormSaved, DType, Shape, Storage } from '../backend';
import { expectShape, input, inputOf, storageFrom } from './storage';

/** The backend-private part of BatchNormSaved: the mode of the forward pass and the ReLU mask. */
interface RefBnExtra {
  readonly kind: 'reference-batchnorm';
  readonly training: boolean;
  /** 1 where the affine output was > 0 (only when p.relu), else null */
  readonly mask: Uint8Array | null;
}

function checkParams(op: string, p: BatchNormParams): void {
  if (!(p.eps > 0)) throw new Error(`${op}: expected eps > 0, received ${p.eps}`);
  if (!(p.momentum >= 0 && p.momentum <= 1)) throw new Error(`${op}: expected momentum in [0,1], received ${p.momentum}`);
}

/** Per-channel batch mean and biased variance of x [N,C,HW] (two passes, in doubles). */
function batchStats(x: ArrayLike<number>, N: number, C: number, HW: number): { mean: Float64Array; varB: Float64Array } {
  const m = N * HW;
  const mean = new Float64Array(C);
  const varB = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) s += x[(n * C + c) * HW + i];
    const mu = s / m;
    let v = 0;
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) {
        const t = x[(n * C + c) * HW + i] - mu;
        v += t * t;
      }
    }
    mean[c] = mu;
    varB[c] = v / m;
  }
  return { mean, varB };
}

/** running = (1 − momentum)·running + momentum·batch, with the unbiased variance m/(m−1)·varB, in place. */
function updateRunning(rm: Float32Array | Float64Array, rv: Float32Array | Float64Array, mean: Float64Array, varB: Float64Array, m: number, momentum: number): void {
  for (let c = 0; c < rm.length; c++) {
    rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
    rv[c] = (1 - momentum) * rv[c] + momentum * varB[c] * (m / (m - 1));
  }
}

/**
 * x [N,C,H,W]; gamma, beta, runningMean, runningVar [C] -> y [N,C,H,W].
 * y = relu?(gamma·(x − mean)·invstd + beta), invstd = 1/sqrt(var + eps).
 */
export function batchNorm2d(
  x: Storage, shape: Shape, gamma: Storage, beta: Storage,
  runningMean: Storage, runningVar: Storage, p: BatchNormParams,
): { y: Storage; saved: BatchNormSaved } {
  const op = 'batchNorm2d';
  expectShape(op, 'x', shape, 'N,C,H,W');
  checkParams(op, p);
  const [N, C, H, W] = shape;
  const HW = H * W;
  const m = N * HW;
  const dt: DType = x.dtype;
  const xd = inputOf(op, 'x', x, shape);
  const g = input(op, 'gamma', gamma, C, dt);
  const b = input(op, 'beta', beta, C, dt);
  const rm = input(op, 'runningMean', runningMean, C, dt);
  const rv = input(op, 'runningVar', runningVar, C, dt);
  let mean: Float64Array;
  let varUsed: Float64Array;
  if (p.training) {
    if (m < 2) throw new Error(`${op}: training needs more than 1 value per channel (N*H*W > 1), received x [${shape.join(',')}]`);
    const st = batchStats(xd, N, C, HW);
    mean = st.mean;
    varUsed = st.varB;
    updateRunning(rm, rv, mean, varUsed, m, p.momentum);
  } else {
    mean = Float64Array.from(rm);
    varUsed = Float64Array.from(rv);
  }
  const invstd = varUsed.map((v) => 1 / Math.sqrt(v + p.eps));
  const y = new Float64Array(xd.length);
  const mask = p.relu ? new Uint8Array(xd.length) : null;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        const z = g[c] * (xd[j] - mean[c]) * invstd[c] + b[c];
        if (mask === null) y[j] = z;
        else if (!(z <= 0)) { y[j] = z; mask[j] = 1; } // NaN passes through, as in PyTorch
      }
    }
  }
  const extra: RefBnExtra = { kind: 'reference-batchnorm', training: p.training, mask };
  // mean and invstd are saved in the storage dtype, as the native backend and PyTorch keep them.
  const saved: BatchNormSaved = { storages: [storageFrom(dt, mean), storageFrom(dt, invstd)], extra };
  return { y: storageFrom(dt, y), saved };
}

function extraOf(op: string, saved: BatchNormSaved, p: BatchNormParams): RefBnExtra {
  const e = saved?.extra as RefBnExtra | undefined;
  if (!e || e.kind !== 'reference-batchnorm' || !Array.isArray(saved.storages) || saved.storages.length !== 2) {
    throw new Error(`${op}: expected saved state from the reference backend's batchNorm2d, received something else`);
  }
  if (e.training !== p.training || (e.mask !== null) !== p.relu) {
    throw new Error(
      `${op}: expected params matching the forward pass (training=${e.training}, relu=${e.mask !== null}), ` +
        `received training=${p.training}, relu=${p.relu}`,
    );
  }
  return e;
}

/**
 * dy [N,C,H,W] -> dx [N,C,H,W], dgamma [C], dbeta [C]. With dz = dy·mask and xhat = (x − mean)·invstd:
 *   dbeta = Σ dz, dgamma = Σ dz·xhat;
 *   training: dx = gamma·invstd/m · (m·dz − Σdz − xhat·Σ(dz·xhat))  (the batch statistics depend on x)
 *   eval:     dx = gamma·invstd·dz                                 (the running statistics are constants)
 */
export function batchNorm2dBackward(
  dy: Storage, x: Storage, shape: Shape, gamma: Storage, beta: Storage, saved: BatchNormSaved, p: BatchNormParams,
): { dx: Storage; dgamma: Storage; dbeta: Storage } {
  const op = 'batchNorm2dBackward';
  expectShape(op, 'x', shape, 'N,C,H,W');
  const [N, C, H, W] = shape;
  const HW = H * W;
  const m = N * HW;
  const dt: DType = dy.dtype;
  const e = extraOf(op, saved, p);
  const dyd = inputOf(op, 'dy', dy, shape);
  const xd = inputOf(op, 'x', x, shape, dt);
  const g = input(op, 'gamma', gamma, C, dt);
  input(op, 'beta', beta, C, dt);
  const mean = input(op, 'saved mean', saved.storages[0], C, dt);
  const invstd = input(op, 'saved invstd', saved.storages[1], C, dt);
  const dz = new Float64Array(dyd.length);
  for (let j = 0; j < dz.length; j++) dz[j] = e.mask === null || e.mask[j] === 1 ? dyd[j] : 0;
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const dx = new Float64Array(dyd.length);
  for (let c = 0; c < C; c++) {
    let sdz = 0;
    let sdzx = 0;
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        sdz += dz[j];
        sdzx += dz[j] * (xd[j] - mean[c]) * invstd[c];
      }
    }
    dbeta[c] = sdz;
    dgamma[c] = sdzx;
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        if (e.training) {
          const xhat = (xd[j] - mean[c]) * invstd[c];
          dx[j] = ((g[c] * invstd[c]) / m) * (m * dz[j] - sdz - xhat * sdzx);
        } else {
          dx[j] = g[c] * invstd[c] * dz[j];
        }
      }
    }
  }
  return { dx: storageFrom(dt, dx), dgamma: storageFrom(dt, dgamma), dbeta: storageFrom(dt, dbeta) };
}
