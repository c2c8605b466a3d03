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
