/**
 * Training configuration fields added after runs existed: `--crop-padding` (RandomCrop's padding, the seed's 4).
 * A checkpoint written before the field resumes as padding 4; another padding is a difference that a resume
 * names; the value is checked.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { configDifferences, RECIPES, validateConfig } from '../../src/train/config';
import { tinyConfig } from './trainer-fixtures/setup';

describe('--crop-padding', () => {
  test('every recipe pads by the seed\'s 4', () => {
    for (const r of Object.values(RECIPES)) assert.equal(r.cropPadding, 4, r.recipe);
  });

  test('a checkpoint from before the field resumes as padding 4; padding 2 is a difference', () => {
    const cfg = tinyConfig();
    const { cropPadding: _p, ...before } = cfg;
    assert.deepEqual(configDifferences(before, cfg), []);
    assert.deepEqual(configDifferences(before, { ...cfg, cropPadding: 2 }), ['--crop-padding: 4 → 2']);
  });

  test('an integer from 0 to 16', () => {
    for (const cropPadding of [-1, 17, 1.5, Number.NaN]) {
      assert.throws(() => validateConfig(tinyConfig({ cropPadding })), new RegExp(`^Error: train: --crop-padding must be an integer from 0 to 16 \\(pixels\\), received ${cropPadding}$`));
    }
    for (const cropPadding of [0, 2, 16]) assert.doesNotThrow(() => validateConfig(tinyConfig({ cropPadding })));
  });
});
