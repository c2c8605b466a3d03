/**
 * The data types the rest of the project sees: a Split (N images of 32x32 RGB in one byte array) and a dataset
 * (CifarData: classes, train and test splits, where they came from, what was skipped, cache status).
 * Types only; the code that fills them is in dataset.ts.
 */

/**
 * N images of 32x32 RGB. `images` is NHWC uint8: image i occupies bytes [i*3072, (i+1)*3072), rows top to
 * bottom, each pixel R, G, B. `labels[i]` is the class index of image i.
 */
export interface Split {
  n: number;
  images: Uint8Array;
  labels: Uint8Array;
  /** where each image came from (relative file path, or "data_batch_1.bin#42"); absent when not kept */
  names?: string[];
}

export interface BadFile {
  path: string;
  reason: string;
}

export type SourceKind = 'imagefolder' | 'imagefolder-archive' | 'cifar-binary' | 'cifar-binary-archive';

export interface CacheInfo {
  /** 'hit': loaded from the cache; 'miss': decoded and written; 'stale': the source changed, decoded again;
   *  'disabled': noCache; 'unwritable': decoded but the cache could not be written */
  status: 'hit' | 'miss' | 'stale' | 'disabled' | 'unwritable';
  path: string | null;
  /** milliseconds spent loading (hit) or decoding and writing (otherwise) */
  ms: number;
}

export interface CifarData {
  classes: string[];
  train: Split;
  /** n = 0 when the source has no test split (a single class tree) */
  test: Split;
  /** "sha256:..." of the content (classes, labels, pixels; dataset.ts contentFingerprint): the same for a
   *  copied, moved or re-extracted dataset; checkpoints record it to refuse resuming on other data */
  fingerprint: string;
  badFiles: BadFile[];
  source: { kind: SourceKind; path: string; root: string };
  /** original image sizes and their counts, e.g. { "32x32": 60000 } */
  sizes: Record<string, number>;
  /** images that were not 32x32 and were resized */
  resized: number;
  /** remarks about the source (ignored files, missing test classes) */
  notes: string[];
  cache: CacheInfo;
}
