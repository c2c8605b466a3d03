/**
 * Training configuration fields added after runs existed: `--crop-padding` (RandomCrop's padding, the seed's 4)
 * and `--zero-init-residual` (each block's last batch-norm scale starts at 0). A checkpoint written before a field
 * resumes as the old behaviour; another value is a difference that a resume names; values are checked; the
 * trainer starts from zeroed scales.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendByName } from '../../src/backend';
import { buildModel, SEED_SPEC } from '../../src/models';
import { RESIDUAL_GAMMA, zeroInitResidual } from '../../src/models/resnet';
import { configDifferences, RECIPES, validateConfig } from '../../src/train/config';
import { PACKAGED_WEIGHTS, packageRoot } from '../../src/cli/defaults';
import { latestCheckpoint, tinyConfig, trainerTempRoot, trainQuiet } from './trainer-fixtures/setup';

const fx = trainerTempRoot('config-fields');

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

describe('--zero-init-residual', () => {
  test('zeroes the 8 blocks\' left.4.weight and nothing else', () => {
    const be = backendByName('reference');
    const spec = { ...SEED_SPEC, width: 4 };
    const plain = buildModel(spec, { seed: 3, backend: be });
    const zeroed = buildModel(spec, { seed: 3, backend: be });
    assert.equal(zeroInitResidual(zeroed), 8);
    const a = plain.stateDict();
    const b = zeroed.stateDict();
    const keys = [...b.keys()].filter((k) => RESIDUAL_GAMMA.test(k));
    assert.deepEqual(keys, ['layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.1', 'layer4.0', 'layer4.1'].map((p) => `${p}.left.4.weight`));
    for (const [k, t] of b) {
      if (keys.includes(k)) {
        assert.ok([...t.data].every((v) => v === 0), `${k} is zero`);
        assert.ok([...a.get(k)!.data].every((v) => v === 1), `${k} was 1 without the option`);
      } else {
        assert.deepEqual(t.data, a.get(k)!.data, `${k} untouched`);
      }
    }
  });

  test('the trainer starts from it: after one epoch at a tiny lr the scales are still ~0, against ~1 without', async () => {
    const gammaMax = async (zero: boolean): Promise<number> => {
      const out = path.join(fx.root, zero ? 'zero' : 'plain');
      await trainQuiet({ config: tinyConfig({ epochs: 1, lr: 1e-9, zeroInitResidual: zero }), data: fx.data, out, worker: false });
      const sd = (await latestCheckpoint(out)).model;
      return Math.max(...[...sd].filter(([k]) => RESIDUAL_GAMMA.test(k)).flatMap(([, t]) => [...t.data].map((v) => Math.abs(Number(v)))));
    };
    assert.ok((await gammaMax(true)) < 1e-6);
    assert.ok(Math.abs((await gammaMax(false)) - 1) < 1e-6);
  });

  test('a checkpoint from before the field resumes without it; with it is a difference', () => {
    const cfg = tinyConfig();
    const { zeroInitResidual: _z, ...before } = cfg;
    assert.deepEqual(configDifferences(before, cfg), []);
    assert.deepEqual(configDifferences(before, { ...cfg, zeroInitResidual: true }), ['--zero-init-residual: false → true']);
  });
});

describe('--alternate-flip', () => {
  test('off in every recipe; a checkpoint from before the field resumes without it; with it is a difference', () => {
    for (const r of Object.values(RECIPES)) assert.equal(r.alternateFlip, false, r.recipe);
    const cfg = tinyConfig();
    const { alternateFlip: _a, ...before } = cfg;
    assert.deepEqual(configDifferences(before, cfg), []);
    assert.deepEqual(configDifferences(before, { ...cfg, alternateFlip: true }), ['--alternate-flip: false → true']);
  });
});

test('the best recipe is the configuration of the run behind the shipped weights, as their model card records it', () => {
  const card = fs.readFileSync(path.join(packageRoot(), path.dirname(PACKAGED_WEIGHTS), 'MODEL_CARD.md'), 'utf8');
  const recorded = JSON.parse(/the configuration as run.json records it:\s*`(\{.*?\})`/s.exec(card)?.[1] ?? 'null') as Record<string, unknown>;
  assert.ok(recorded, 'the model card records a configuration');
  const { recipe: _r, ...rest } = recorded;
  const { recipe, ...best } = RECIPES.best as unknown as Record<string, unknown>;
  assert.equal(recipe, 'best');
  assert.deepEqual(best, rest);
});
