/**
 * The CLI's option-value parsers (src/cli/parse.ts), alone and through the `resnet` command: a bad value is refused
 * before any work, and the error names the option and the allowed range.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { InvalidArgumentError } from 'commander';
import { intArg, intInRange, numArg } from '../../src/cli/parse';
import { cliCommand } from '../helpers/cli';

test('intInRange accepts the integers of its range, bounds included, and refuses the rest', () => {
  const opset = intInRange(13, 21);
  assert.equal(opset('13'), 13);
  assert.equal(opset('21'), 21);
  for (const bad of ['12', '22', '13.5', 'abc', '']) {
    assert.throws(() => opset(bad), (e: unknown) => e instanceof InvalidArgumentError
      && e.message === `expected an integer from 13 to 21, received ${JSON.stringify(bad)}`);
  }
  const positive = intInRange(1);
  assert.equal(positive('1'), 1);
  assert.equal(positive('1e6'), 1e6);
  assert.throws(() => positive('0'), /^InvalidArgumentError: expected an integer of at least 1, received "0"$/);
  assert.throws(() => positive('-3'), /expected an integer of at least 1, received "-3"/);
});

test('intArg and numArg', () => {
  assert.equal(intArg('-4'), -4);
  assert.throws(() => intArg('2.5'), InvalidArgumentError);
  assert.equal(numArg('2.5e-3'), 0.0025);
  assert.throws(() => numArg('NaN'), InvalidArgumentError);
  assert.throws(() => numArg('Infinity'), InvalidArgumentError);
});

for (const [args, option, message] of [
  [['predict', 'a.png', '--weights', 'w', '--topk', '0'], '--topk <k>', 'expected an integer of at least 1, received "0"'],
  [['export', '--weights', 'w', '--out', 'm.onnx', '--opset', '12'], '--opset <n>', 'expected an integer from 13 to 21, received "12"'],
  [['serve', '--weights', 'w', '--port', '70000'], '--port <n>', 'expected an integer from 0 to 65535, received "70000"'],
  [['bench', '--batch', '0'], '--batch <n>', 'expected an integer of at least 1, received "0"'],
  [['data', '--data', 'd', '--max-pixels', '-3'], '--max-pixels <n>', 'expected an integer of at least 1, received "-3"'],
] as const) {
  test(`resnet ${args[0]} ${args.slice(-2).join(' ')}: exit 1, the error names ${option}`, () => {
    const r = spawnSync(process.execPath, [...cliCommand(), ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(`error: option '${option}' argument '${args[args.length - 1]}' is invalid. ${message}`), r.stderr);
  });
}
