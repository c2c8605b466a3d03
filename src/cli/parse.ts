/** Option-value parsers for commander: a bad value is reported with the option's name by commander itself. */
import { InvalidArgumentError } from 'commander';

export function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected an integer.');
  return n;
}

export function numArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number.');
  return n;
}

/** A parser for integers from min to max (inclusive; max omitted: no upper bound). */
export function intInRange(min: number, max = Infinity): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      const range = max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected an integer ${range}, received ${JSON.stringify(v)}`);
    }
    return n;
  };
}
