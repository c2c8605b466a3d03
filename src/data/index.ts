/**
 * The public API of src/data: decoding (shared with prediction and the server), datasets, the decode cache,
 * augmentation and the loader. Re-exports only; see each file for what it does.
 */
export {
  decodeImage,
  decodePlainJpegs,
  preprocessForModel,
  resizeRgb,
  ImageDecodeError,
  DEFAULT_MAX_PIXELS,
  sniffImageType,
  readImageHeaderSize,
} from './decode';
export type { DecodeOptions, DecodedImage, ImageErrorCode, ImageType, HeaderSize } from './decode';
export { normalizeImage, normalizeInto, CIFAR_MEAN, CIFAR_STD, IMAGE_SIZE, IMAGE_BYTES } from './normalize';
export { openDataset, listFolder } from './dataset';
export type { OpenDatasetOptions } from './dataset';
export type { Split, BadFile, CifarData, CacheInfo, SourceKind } from './types';
export { IMAGE_EXTENSIONS, planImageFolder } from './imagefolder';
export { readTarArchive } from './archive';
export { CIFAR10_URL, CIFAR10_MD5, CIFAR10_CLASSES, downloadCifar10, md5File } from './cifar-binary';
export { defaultCacheDir, cacheFilePath } from './cache';
export { augmentInto, buildBatchX, sampleAugmentation, CROP_PADDING } from './augment';
export type { AugmentOptions, SampleAugmentation } from './augment';
export { splitValidation, subsetSplit, permutation, epochPermutation, limitIndices } from './split';
export { Loader } from './loader';
export type { LoaderOptions, Batch } from './loader';
export { summarizeDataset, formatSummary } from './summary';
export type { DatasetSummary } from './summary';
