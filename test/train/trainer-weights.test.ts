/**
 * `train --weights W` with weights of another shape: the error names the option, lists the first
 * few mis-shaped keys and counts the rest, instead of one line per key of the whole model (122 for ResNet-18).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { writeSafetensorsFile } from '../../src/interop/safetensors';
import { resnet18 } from '../../src/models/resnet';
import { tinyConfig, trainerTempRoot, trainQuiet } from './trainer-fixtures/setup';

const fx = trainerTempRoot('trainer-weights');

test('weights of a wider model: the first 5 mis-shaped keys and a count of the rest', async () => {
  const weights = path.join(fx.root, 'width8.safetensors');
  const wide = resnet18({ numClasses: 3, seed: 0, baseWidth: 8 });
  writeSafetensorsFile(weights, wide.stateDict());
  wide.dispose();
  await assert.rejects(trainQuiet({ config: tinyConfig(), data: fx.data, out: path.join(fx.root, 'run'), worker: false, weights }), (err: Error) => {
    const message = err.message.split('\n--- trainer stderr ---')[0];
    assert.match(message, new RegExp(`^train: --weights ${weights} does not fit the model: mis-shaped keys: ` +
      'conv1\\.0\\.weight: expected \\[4,3,3,3\\], received \\[8,3,3,3\\]; conv1\\.1\\.weight: expected \\[4\\], received \\[8\\]; ' +
      '(.*?; ){3}and \\d+ more \\(\\d+ in all\\)$'));
    assert.equal(message.split('; ').length, 6, message);
    return true;
  });
});
