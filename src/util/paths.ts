/**
 * Where resnet-ts keeps files that can be rebuilt: the decode cache, downloads, the convolution benchmark's
 * choices. $RESNET_CACHE_DIR, else ~/.cache/resnet-ts.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultCacheDir(): string {
  return process.env.RESNET_CACHE_DIR || join(homedir(), '.cache', 'resnet-ts');
}
