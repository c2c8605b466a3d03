/** Defaults that several subcommands share, so that `train` and `eval` look for the data in the same place. */
import * as fs from 'node:fs';

/** The default --data: ./data as the seed, else the official dataset (downloaded and cached). */
export function defaultData(): string {
  return fs.existsSync('data') ? 'data' : 'cifar10';
}
