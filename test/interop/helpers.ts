/**
 * Shared by the interop tests: paths of the fixtures made by scripts/fixtures/make_interop.py, the full-size
 * fixture model's weights, running an ONNX model with onnxruntime-node, and the "relative error ≤ 1e-4" check.
 *
 * The full-size model is not stored (45 MB): its conv weights are the golden fixture's deterministic values
 * (test/helpers/fixture-values.ts, the same formula as make_golden.py), and every other entry (BatchNorm with
 * calibrated running statistics, fc) is read from seed_bn_fc.pth, written by torch.save.
 *
 * Not a test file itself (no `.test.ts`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { HostTensor, StateDict } from '../../src/tensor/host';
import { readPthFile } from '../../src/interop/pth-read';
import { fixtureFile, fixtureStateDict } from '../helpers/fixture-values';
import { expectClose } from '../helpers/close';

/** The absolute path of test/fixtures/interop/<name>, from the sources (tsx) or from dist/test (npm test). */
export function interopFixture(name: string): string {
  return fixtureFile('interop', name);
}

export function tensorOf(sd: StateDict, key: string): HostTensor {
  const t = sd.get(key);
  if (t === undefined) throw new Error(`fixture has no tensor '${key}' (keys: ${[...sd.keys()].slice(0, 8).join(', ')})`);
  return t;
}

/** The full-size fixture model that seed_logits.pth holds PyTorch's logits of. */
export function seedFixtureStateDict(): StateDict {
  const sd = fixtureStateDict();
  for (const [k, v] of readPthFile(interopFixture('seed_bn_fc.pth')).stateDict) {
    if (!sd.has(k)) throw new Error(`seed_bn_fc.pth: key '${k}' is not in the fixture model`);
    sd.set(k, v);
  }
  return sd;
}

/** { input [N,3,32,32], logits [N,classes] } as saved by PyTorch. */
export function referenceLogits(file: 'seed_logits.pth' | 'tiny_logits.pth'): { input: HostTensor; logits: HostTensor } {
  const sd = readPthFile(interopFixture(file)).stateDict;
  return { input: tensorOf(sd, 'input'), logits: tensorOf(sd, 'logits') };
}

/** The first `n` images of a [N,3,32,32] batch. */
export function firstImages(x: HostTensor, n: number): HostTensor {
  const per = x.shape.slice(1).reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape: [n, ...x.shape.slice(1)], data: (x.data as Float32Array).slice(0, n * per) };
}

/** Runs an ONNX model (bytes) on `x`; returns output `logits`. */
export async function runOnnx(model: Uint8Array, x: HostTensor): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const feeds = { input: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) };
    const out = await session.run(feeds);
    const logits = out.logits;
    if (logits === undefined) throw new Error(`runOnnx: expected an output 'logits', received ${Object.keys(out).join(', ')}`);
    return { data: logits.data as Float32Array, dims: logits.dims };
  } finally {
    await session.release();
  }
}

/** The bar: |a - e| ≤ 1e-4 · max|e| elementwise (and 1e-4 relative for each value). */
export function expectLogitsClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  let ref = 0;
  for (let i = 0; i < expected.length; i++) ref = Math.max(ref, Math.abs(expected[i]));
  expectClose(actual, expected, { atol: 1e-4 * ref, rtol: 1e-4 }, what);
}

/** A fresh temporary folder, removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-interop-'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
