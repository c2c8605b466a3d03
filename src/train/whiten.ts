/**
 * Patch-whitening initialisation of the stem convolution (`--whiten-init N`).
 *
 * The stem (`conv1.0`, 3x3 over 3 channels) sees 27-value patches. Its first filters are set to the principal
 * directions of the training images' patches, each scaled by 1/sqrt(eigenvalue + eps), and the next ones to their
 * negatives (the ReLU after the batch norm would otherwise drop half of each direction): the stem then starts by
 * decorrelating its input instead of from random filters. The idea is patch whitening (Coates & Ng 2011) as
 * airbench uses it for fast CIFAR-10 training (Jordan 2024); the network, its shapes and its state-dict names stay
 * the seed's, only the starting values of 54 of the 64 stem filters change (the rest keep their random init).
 */
import type { Module } from '../nn/module';

/** The default eps added to every eigenvalue: keeps the noisiest directions from being scaled without bound. */
export const WHITEN_EPS = 5e-4;

/**
 * The covariance (d x d, d = c·k·k, row-major, float64) of every k x k patch without padding of n NCHW images;
 * a patch's value order is (channel, row, column), the order of a convolution weight's last three axes.
 */
export function patchCovariance(x: Float32Array, n: number, c: number, h: number, w: number, k: number): Float64Array {
  const d = c * k * k;
  if (x.length !== n * c * h * w) throw new Error(`patchCovariance: ${x.length} values are not ${n}x${c}x${h}x${w}`);
  if (k > h || k > w) throw new Error(`patchCovariance: a ${k}x${k} patch does not fit ${h}x${w} images`);
  const sum = new Float64Array(d);
  const outer = new Float64Array(d * d);
  const p = new Float64Array(d);
  let count = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y + k <= h; y++) {
      for (let xx = 0; xx + k <= w; xx++) {
        let j = 0;
        for (let ci = 0; ci < c; ci++) {
          const plane = (i * c + ci) * h * w;
          for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) p[j++] = x[plane + (y + dy) * w + xx + dx];
        }
        for (let a = 0; a < d; a++) {
          const pa = p[a];
          sum[a] += pa;
          const row = a * d;
          for (let b = a; b < d; b++) outer[row + b] += pa * p[b];
        }
        count++;
      }
    }
  }
  if (count < 2) throw new Error('patchCovariance: needs at least 2 patches');
  const cov = new Float64Array(d * d);
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = (outer[a * d + b] - (sum[a] * sum[b]) / count) / (count - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return cov;
}

/**
 * Eigen-decomposition of a symmetric d x d matrix by cyclic Jacobi rotations: eigenvalues in descending order and
 * the matching unit eigenvectors as rows of `vectors` (d x d, row-major).
 */
export function symmetricEigen(m: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  if (m.length !== d * d) throw new Error(`symmetricEigen: ${m.length} values are not ${d}x${d}`);
  const a = Float64Array.from(m);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale = Math.max(scale, Math.abs(a[i]));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] * a[p * d + q];
    if (Math.sqrt(off) <= 1e-15 * Math.max(scale, 1e-300)) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        // A <- Jᵀ A J on rows/columns p and q
        for (let r = 0; r < d; r++) {
          const arp = a[r * d + p];
          const arq = a[r * d + q];
          a[r * d + p] = cs * arp - sn * arq;
          a[r * d + q] = sn * arp + cs * arq;
        }
        for (let r = 0; r < d; r++) {
          const apr = a[p * d + r];
          const aqr = a[q * d + r];
          a[p * d + r] = cs * apr - sn * aqr;
          a[q * d + r] = sn * apr + cs * aqr;
        }
        // eigenvectors as columns of V <- V J
        for (let r = 0; r < d; r++) {
          const vrp = v[r * d + p];
          const vrq = v[r * d + q];
          v[r * d + p] = cs * vrp - sn * vrq;
          v[r * d + q] = sn * vrp + cs * vrq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => a[j * d + j] - a[i * d + i]);
  const values = new Float64Array(d);
  const vectors = new Float64Array(d * d);
  order.forEach((col, row) => {
    values[row] = a[col * d + col];
    for (let r = 0; r < d; r++) vectors[row * d + r] = v[r * d + col];
  });
  return { values, vectors };
}

/**
 * The d whitening filters of a patch covariance (rows of a d x d matrix, float64): eigenvector i scaled by
 * 1/sqrt(eigenvalue_i + eps), in descending eigenvalue order. Filtered patches then have covariance
 * diag(λ/(λ+eps)), about the identity.
 */
export function whiteningFilters(cov: Float64Array, d: number, eps = WHITEN_EPS): Float64Array {
  const { values, vectors } = symmetricEigen(cov, d);
  const f = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const s = 1 / Math.sqrt(Math.max(values[i], 0) + eps);
    for (let j = 0; j < d; j++) f[i * d + j] = vectors[i * d + j] * s;
  }
  return f;
}

/** The stem's weight name in the seed's state dict. */
export const STEM_WEIGHT = 'conv1.0.weight';

/**
 * Sets the stem's first filters from `n` normalised NCHW images: filter i = whitening filter i, filter d + i its
 * negative, for as many as the stem has outputs (ResNet-18: 27 + 27 of 64; the last 10 keep their values).
 * Returns how many filters it set.
 */
export function whitenStem(model: Module, images: Float32Array, n: number, eps = WHITEN_EPS): number {
  const sd = model.stateDict();
  const wt = sd.get(STEM_WEIGHT);
  if (!wt || wt.shape.length !== 4) throw new Error(`whiten-init: the model has no 4-d ${STEM_WEIGHT}`);
  const [cout, cin, kh, kw] = wt.shape;
  if (kh !== kw) throw new Error(`whiten-init: the stem's kernel is ${kh}x${kw}, not square`);
  const hw = images.length / (n * cin);
  const side = Math.round(Math.sqrt(hw));
  if (side * side !== hw) throw new Error(`whiten-init: ${images.length} values are not ${n} square ${cin}-channel images`);
  const d = cin * kh * kw;
  const f = whiteningFilters(patchCovariance(images, n, cin, side, side, kh), d, eps);
  const w = wt.data as Float32Array | Float64Array;
  let set = 0;
  for (let o = 0; o < cout && o < 2 * d; o++) {
    const sign = o < d ? 1 : -1;
    const src = (o % d) * d;
    for (let j = 0; j < d; j++) w[o * d + j] = sign * f[src + j];
    set++;
  }
  model.loadStateDict(sd);
  return set;
}
