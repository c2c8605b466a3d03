/** Tests of the logits → prediction arithmetic (softmax, arg-max, top-k) and the class-name lookup. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { predictionFromLogits, predictionFromProbabilities, predictionToJson, softmax, topK } from '../../src/predict/prediction';
import { className, classNames } from '../../src/predict/classes';

describe('softmax', () => {
  test('matches exp(x)/sum(exp(x)) and sums to 1', () => {
    const x = [1, 2, 3, -1];
    const e = x.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    const p = softmax(x);
    p.forEach((v, i) => assert.ok(Math.abs(v - e[i] / s) < 1e-15, `p[${i}] = ${v}, expected ${e[i] / s}`));
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-15);
  });
  test('does not overflow on large logits', () => {
    const p = softmax([1000, 1000, 999]);
    assert.ok(p.every(Number.isFinite));
    assert.ok(Math.abs(p[0] - p[1]) < 1e-15 && p[0] > p[2]);
  });
  test('rejects an empty vector and non-finite logits', () => {
    assert.throws(() => softmax([]), /at least one logit/);
    assert.throws(() => softmax([Infinity, 1]), /finite/);
  });
});

describe('predictionFromLogits', () => {
  test('picks the arg-max with both names, keeps logits and probabilities', () => {
    const logits = new Float32Array([0.1, 0.2, 0.3, 2.5, 0, 0, 0, 0, 0, -1]);
    const p = predictionFromLogits(logits);
    assert.equal(p.index, 3);
    assert.equal(p.label, 'cat');
    assert.equal(p.labelZh, '猫');
    assert.equal(p.confidence, p.probs[3]);
    assert.deepEqual(p.logits, Array.from(logits));
    assert.equal(p.probs.length, 10);
  });
  test('ties go to the lower index, as torch.argmax', () => {
    assert.equal(predictionFromLogits([0, 5, 5, 1]).index, 1);
  });
  test('NaN logits are an error, not a silent class 0', () => {
    assert.throws(() => predictionFromLogits([NaN, 1, 2]), /logit 0 is NaN/);
  });
  test('JSON form uses the wire names', () => {
    const j = predictionToJson(predictionFromLogits([0, 0, 0, 0, 0, 0, 0, 0, 3, 0]));
    assert.deepEqual(Object.keys(j), ['label', 'label_zh', 'index', 'confidence', 'probs', 'logits']);
    assert.equal(j.label, 'ship');
    assert.equal(j.label_zh, '船');
  });
});

describe('predictionFromProbabilities (test-time augmentation: probabilities averaged elsewhere)', () => {
  test('the arg-max of the given probabilities, not of the logits; both kept as given', () => {
    // logits favour class 0, the (averaged) probabilities class 2
    const p = predictionFromProbabilities(Float32Array.from([0.25, 0.25, 0.5]), [3, 1, 2]);
    assert.equal(p.index, 2);
    assert.equal(p.label, 'bird');
    assert.equal(p.labelZh, '鸟');
    assert.equal(p.confidence, 0.5);
    assert.deepEqual(p.probs, [0.25, 0.25, 0.5]);
    assert.deepEqual(p.logits, [3, 1, 2]);
    assert.equal(predictionFromProbabilities([0.4, 0.4, 0.2], [0, 0, 0]).index, 0, 'ties go to the lower index');
  });
  test('NaN probabilities and mismatched lengths are errors', () => {
    assert.throws(() => predictionFromProbabilities([0.5, NaN], [1, 2]), /probability 1 is NaN/);
    assert.throws(() => predictionFromProbabilities([0.5, 0.5], [1, 2, 3]), /expected as many probabilities as logits.*received 2 and 3/);
  });
});

describe('topK and class names', () => {
  test('most probable first, clamped to the number of classes', () => {
    const p = predictionFromLogits([0, 3, 1, 2]);
    assert.deepEqual(topK(p, 3).map((c) => c.index), [1, 3, 2]);
    assert.equal(topK(p, 99).length, 4);
    assert.throws(() => topK(p, 0), /positive integer/);
  });
  test('the seed\'s Chinese names in label order; extra classes get generic names', () => {
    assert.deepEqual(classNames(10).map((c) => c.zh), ['飞机', '汽车', '鸟', '猫', '鹿', '狗', '青蛙', '马', '船', '卡车']);
    assert.deepEqual(className(12), { index: 12, en: 'class_12', zh: 'class_12' });
    assert.throws(() => className(-1), /non-negative integer/);
  });
});
