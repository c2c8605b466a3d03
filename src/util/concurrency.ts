/**
 * Bounded concurrency for async work: what the decoders (src/data/imagefolder.ts, src/predict/read-input.ts) use to
 * keep a few reads or decodes in flight without starting all of them at once.
 */

/** Runs fn over items with at most `limit` calls in flight; results in item order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
