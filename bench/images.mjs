// The image files under a folder, recursively, in sorted order (the benchmarks' inputs: bench/predict-folder.mjs,
// bench/serve-load.mjs).
import * as fs from 'node:fs';
import * as path from 'node:path';

export function listImages(dir) {
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (/\.(jpe?g|png|webp|bmp|gif|tiff?)$/i.test(e.name)) files.push(path.join(d, e.name));
    }
  };
  walk(dir);
  return files;
}
