/**
 * The training loop of `resnet train`, in one readable file: the seed's loop (forward, cross-entropy, backward, SGD
 * step; test loss and accuracy after each epoch; a checkpoint per epoch; the best accuracy in best_acc.txt) plus what
 * a run of hours or days needs: exact resume, TensorBoard and metrics.jsonl logs, SIGINT/SIGTERM handling, NaN
 * detection, and a lock on the run folder. Read top to bottom: train (lock, signals), run (set-up, resume, the
 * epoch loop), trainEpoch (the steps), endEpoch (evaluation, logs, checkpoint). The step itself is step.ts; the
 * logs are behind run-log.ts; the NaN/Inf checks that end a run as diverged are divergence.ts; the moving average
 * of the weights (`--ema`) is ema.ts, the per-epoch evaluations (raw and EMA weights, TTA) evaluate.ts.
 *
 * With an EMA, each epoch is also evaluated with the averaged weights (in a second model of the same spec), and the
 * best epoch (best.ckpt, best_acc.txt) is ranked by the EMA's accuracy: the average is the model the run delivers,
 * and what loadWeights reads from its checkpoints by default.
 *
 * Determinism: initial weights come from `seed`, the data order and augmentation of epoch e from (seed, e), and the
 * learning rate from the global step, so a run interrupted at any step and resumed continues bit for bit.
 * A checkpoint file epoch-000E.ckpt holds the state after epoch E, or — when the run was interrupted during epoch E —
 * the state after `batchInEpoch` of its batches (`complete: false`), replaced once the epoch finishes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend, Precision } from '../backend/backend';
import { applyPrecision } from '../backend/precision';
import { Loader, type Batch } from '../data/loader';
import { openDataset, splitValidation } from '../data';
import type { CifarData, Split } from '../data/types';
import { loadWeights } from '../interop/weights';
import { SEED_SPEC, buildModel, type ModelSpec } from '../models';
import { zeroInitResidual } from '../models/resnet';
import { whitenStem } from './whiten';
import { buildBatchX } from '../data/augment';
import type { ResNet } from '../models/resnet';
import { describeLoad } from '../nn/module';
import { noDecayNames, SGD } from '../nn/optim';
import { Tensor, type StateDict } from '../tensor';
import {
  NoCheckpointError, isFiniteStateDict, loadLatestCheckpoint, saveCheckpoint, writeBestAccuracy, type Checkpoint,
  type LoadedCheckpoint,
} from '../run/checkpoint';
import { DivergedError, assertFiniteInput, assertFiniteLoss, assertFiniteState } from './divergence';
import { DEFAULT_KEEP_LAST, configDifferences, validateConfig, type TrainConfig } from './config';
import { argmaxRow, evaluateEpoch } from './evaluate';
import { emaForRun, type WeightEma } from './ema';
import { lookaheadForRun, type Lookahead } from './lookahead';
import { acquireRunLock } from '../run/lock';
import { Progress } from './progress';
import { claimForNewRun, removeEmptyFolders, repairOnResume, resumesOut } from '../run/run-folder';
import { saveRunInfo } from '../run/run-info';
import { learningRate } from './schedule';
import { RunLog, epochSummary } from './run-log';
import { trainStep } from './step';
import { installStopSignals, throughPollPhase, type StopSignals } from './signals';

export interface TrainOptions {
  config: TrainConfig;
  data: string;
  out: string;
  backend: Backend;
  /** continue the run in `out` (or from this run folder / checkpoint) */
  resume?: boolean | string;
  /** with resume: resume even when the config or dataset differs; without: start over in a folder holding a run,
   * moving the old run into out/previous-N (run-folder.ts) */
  force?: boolean;
  /** start from these weights (any format loadWeights reads) */
  weights?: string;
  /** keep only the last K epoch checkpoints (default DEFAULT_KEEP_LAST; 0 keeps every one, as the seed) */
  keepLast?: number;
  onBadImage?: 'skip' | 'fail';
  /** refuse images that are not 32x32 instead of resizing them */
  strictSize?: boolean;
  /** use a worker thread for batches (default true) */
  worker?: boolean;
  log?: (line: string) => void;
  /** testing hook: may modify a batch before its step */
  transformBatch?: (b: Batch, globalStep: number) => void;
  /** listen for SIGINT/SIGTERM (default true) */
  handleSignals?: boolean;
  /** testing hook: the clock (ms) that times epochs (default performance.now) */
  clock?: () => number;
}

export type TrainStatus = 'completed' | 'interrupted' | 'diverged';

export interface TrainResult {
  status: TrainStatus;
  /** 0 completed, 130 SIGINT, 143 SIGTERM, 3 diverged */
  exitCode: number;
  epochsDone: number;
  step: number;
  bestAcc: number;
  /** per epoch: these figures and those of the epoch's metrics record (val_*, *_tta, ema_*), when it has them */
  history: HistoryRow[];
}

export type HistoryRow = {
  epoch: number; train_loss: number; train_acc: number; test_loss: number; test_acc: number; lr: number; seconds: number;
} & Record<string, number>;

export { DivergedError };

interface EpochAccumulator { lossSum: number; correct: number; seen: number; batches: number }

/**
 * Where a run stands. epochSeconds: wall time already spent on the current epoch by earlier processes (a mid-epoch
 * resume), so that an epoch's `seconds` is its whole training and test time, not only this process's part of it.
 */
interface RunState { epoch: number; step: number; bestAcc: number; batchInEpoch: number; epochSeconds: number; acc: EpochAccumulator }

/** A checkpoint's `trainer` section as written; a checkpoint from an older version may lack fields. */
interface TrainerSnapshot {
  complete: boolean; batchInEpoch: number; bestAcc: number; acc: EpochAccumulator; history: TrainResult['history']; epochSeconds: number;
}

/** Trains as configured; resolves when the run completes, is interrupted (checkpoint saved) or diverges. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const cfg = opts.config;
  validateConfig(cfg);
  if (opts.keepLast !== undefined && !(Number.isInteger(opts.keepLast) && opts.keepLast >= 0)) {
    throw new Error(`train: --keep-last must be an integer >= 0 (0 keeps every epoch file), received ${opts.keepLast}`);
  }
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
  const created = fs.mkdirSync(opts.out, { recursive: true });
  const lock = acquireRunLock(opts.out, { onWarning: warn });
  const stop: StopSignals | null = opts.handleSignals === false ? null : installStopSignals((sig) => {
    process.stderr.write(`\n${sig}: finishing the current step, then saving a checkpoint (press again: ignored)\n`);
  });
  let failed = true;
  try {
    if (!resumesOut(opts.out, opts.resume)) claimForNewRun(opts.out, opts.force === true, log);
    const result = await run(opts, cfg, log, warn, stop);
    failed = false;
    return result;
  } finally {
    // the lock first: once our listeners are gone, a late Ctrl-C ends the process at once (Node's default)
    lock.release();
    stop?.dispose();
    if (failed && created !== undefined) removeEmptyFolders(opts.out, created);
  }
}

/** Everything a run holds while it trains: set up once by setUp, then read and advanced by the epoch loop. */
interface Session {
  opts: TrainOptions; cfg: TrainConfig; log: (l: string) => void; warn: (m: string) => void; stop: StopSignals | null;
  precision: Precision; data: CifarData; spec: ModelSpec; numClasses: number;
  trainLoader: Loader; testLoader: Loader; valLoader: Loader | null;
  model: ResNet; opt: SGD; totalSteps: number; keepLast: number | undefined;
  /** the moving average of the weights (cfg.ema > 0) and the model it is evaluated in (built at the first epoch end) */
  ema: WeightEma | null; emaModel: ResNet | null;
  /** Lookahead's slow weights (cfg.lookahead > 0), and what the resumed checkpoint held of them */
  lookahead: Lookahead | null; resumedLookahead: { state: StateDict; syncs: number } | null | undefined;
  state: RunState; history: TrainResult['history'];
  /** the clock (ms) and the current epoch's start on it */
  now: () => number; epochStart: number;
}

async function run(
  opts: TrainOptions, cfg: TrainConfig, log: (l: string) => void, warn: (m: string) => void, stop: StopSignals | null,
): Promise<TrainResult> {
  const s = await setUp(opts, cfg, log, warn, stop);
  if (opts.weights) await initFromWeights(s.model, opts.weights, log);
  const fromCheckpoint = opts.resume ? await resumeRun(s) : null;
  s.ema = emaForRun(s.model, cfg.ema, fromCheckpoint, warn);
  s.lookahead = lookaheadForRun(s.model, cfg.lookahead ?? 0, s.resumedLookahead, warn);
  const { state } = s;
  if (state.epoch >= cfg.epochs) {
    // nothing to train: no resume record, no event file, and no "epochs 5..4"
    await release(s);
    const best = state.bestAcc >= 0 ? `best accuracy ${(100 * state.bestAcc).toFixed(2)}%` : 'no best accuracy';
    log(`${opts.out} is already finished: ${state.epoch} epochs trained (--epochs ${cfg.epochs}), ${best}; nothing to do ` +
      `(to train longer, resume with --epochs above ${state.epoch})`);
    return { status: 'completed', exitCode: 0, epochsDone: state.epoch, step: state.step, bestAcc: state.bestAcc, history: s.history };
  }
  const runLog = RunLog.open(opts.out, { resume: opts.resume ? { epoch: state.epoch, step: state.step + 1 } : undefined, onWarning: warn, log });
  writeRunInfo(opts, cfg, s.data, s.precision, s.spec);
  runLog.say(`training ${cfg.recipe} recipe on ${opts.backend.name} in ${s.precision}: ${s.trainLoader.size} train / ` +
    `${s.testLoader.size} test images, ${s.numClasses} classes, ${s.trainLoader.numBatches} steps per epoch, ` +
    `epochs ${state.epoch + 1}..${cfg.epochs}; run folder ${opts.out}`);
  const status = await trainEpochs(s, runLog);
  const exitCode = status === 'completed' ? 0 : status === 'diverged' ? 3 : (stop?.exitCode() ?? 130);
  return { status, exitCode, epochsDone: state.epoch, step: state.step, bestAcc: state.bestAcc, history: s.history };
}

/** The data, loaders, model and optimizer of a run, before any weights or checkpoint are loaded into them. */
async function setUp(
  opts: TrainOptions, cfg: TrainConfig, log: (l: string) => void, warn: (m: string) => void, stop: StopSignals | null,
): Promise<Session> {
  // first, so that a CPU without bf16 is told before the data is decoded; older configs have no precision: fp32
  const precision = applyPrecision(cfg.precision ?? 'fp32', opts.backend);
  const data = await openDataset(opts.data, { onBadImage: opts.onBadImage ?? 'skip', strictSize: opts.strictSize, log: (m) => log(m) });
  if (data.test.n === 0) throw new Error(`train: ${opts.data} has no test split (expected test/<class>/... beside train/)`);
  const { train: trainSplit, val } = cfg.valSplit > 0 ? splitValidation(data.train, cfg.valSplit, cfg.seed) : { train: data.train, val: null };
  const trainLoader = new Loader(trainSplit, {
    batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, dropLast: false, limit: cfg.limit, worker: opts.worker ?? true,
    augment: { crop: cfg.crop, cropPadding: cfg.cropPadding ?? 4, flip: cfg.flip, cutout: cfg.cutout, alternateFlip: cfg.alternateFlip ?? false },
  });
  const evalLoader = (sp: Split) => new Loader(sp, {
    batchSize: 256, shuffle: false, seed: cfg.seed, dropLast: false, limit: sp === data.test ? cfg.testLimit : undefined,
    augment: { crop: false, flip: false },
  });
  const testLoader = evalLoader(data.test);
  const valLoader = val ? evalLoader(val) : null;
  const numClasses = data.classes.length;
  const spec: ModelSpec = { arch: 'resnet18', width: cfg.baseWidth, numClasses, inputSize: SEED_SPEC.inputSize };
  const model = buildModel(spec, { seed: cfg.seed, backend: opts.backend });
  // the starting weights; a resumed run or --weights replaces them later
  if (cfg.zeroInitResidual) zeroInitResidual(model);
  if ((cfg.whitenInit ?? 0) > 0) {
    const n = Math.min(cfg.whitenInit, trainSplit.n);
    const set = whitenStem(model, buildBatchX(trainSplit.images, Int32Array.from({ length: n }, (_, i) => i), 0, cfg.seed, null), n);
    log(`whiten-init: ${set} stem filters from the 3x3 patches of ${n} training images`);
  }
  const named = model.namedParameters();
  const opt = new SGD(named, {
    lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay, nesterov: cfg.nesterov,
    noDecay: cfg.decayNormBias ? [] : noDecayNames(named),
  });
  const now = opts.clock ?? (() => performance.now());
  return {
    opts, cfg, log, warn, stop, precision, data, spec, numClasses, trainLoader, testLoader, valLoader, model, opt, ema: null, emaModel: null, lookahead: null, resumedLookahead: null,
    totalSteps: cfg.epochs * trainLoader.numBatches,
    keepLast: opts.keepLast === 0 ? undefined : (opts.keepLast ?? DEFAULT_KEEP_LAST),
    state: { epoch: 0, step: 0, bestAcc: -1, batchInEpoch: 0, epochSeconds: 0, acc: { lossSum: 0, correct: 0, seen: 0, batches: 0 } },
    history: [], now, epochStart: now(),
  };
}

async function release(s: Session): Promise<void> {
  await s.trainLoader.close();
  await s.testLoader.close();
  await s.valLoader?.close();
  s.opt.dispose();
  s.model.dispose();
  s.ema?.dispose();
  s.emaModel?.dispose();
  s.lookahead?.dispose();
}

/**
 * Loads the checkpoint to resume from, repairs the run folder around it and says when the precision changes.
 * Resolves to the checkpoint's moving average (undefined: none in it; null: no checkpoint, a new run).
 */
async function resumeRun(s: Session): Promise<Checkpoint['ema'] | null> {
  const loaded = await resumeFrom(s);
  const { opts, state } = s;
  if (loaded && resumesOut(opts.out, opts.resume)) {
    repairOnResume(opts.out, loaded, { epochsDone: state.epoch, bestAcc: state.bestAcc, history: s.history }, s.warn);
  }
  const before = loaded?.checkpoint.env?.precision ?? 'fp32'; // checkpoints before --precision were fp32
  if (loaded && before !== s.precision) s.warn(`the run so far trained in ${before}; it continues in ${s.precision}`);
  const la = loaded?.checkpoint.lookahead;
  s.resumedLookahead = loaded ? (la ? { state: la.state, syncs: la.syncs } : undefined) : null;
  return loaded ? loaded.checkpoint.ema : null;
}

/** The epoch loop, from the state's epoch to the last; ends completed, interrupted (checkpoint saved) or diverged. */
async function trainEpochs(s: Session, runLog: RunLog): Promise<TrainStatus> {
  const { cfg, opts, state, stop } = s;
  try {
    for (let e = state.epoch; e < cfg.epochs; e++) {
      const epochNo = e + 1;
      s.epochStart = s.now();
      await trainEpoch(s, runLog, epochNo);
      // A finite loss does not prove finite weights (a huge lr overflows the update; a BatchNorm running variance
      // can overflow while the train-mode forward still looks fine): check before anything is evaluated or saved.
      assertFiniteState(s.model, s.opt, epochNo, state.step, opts.out);
      if (stop?.stopRequested() && state.batchInEpoch < s.trainLoader.numBatches) {
        const file = await saveCheckpoint(opts.out, checkpointOf(s, false), { keepLast: s.keepLast });
        runLog.say(`interrupted: saved ${file} (epoch ${epochNo}, ${state.batchInEpoch}/${s.trainLoader.numBatches} steps); ` +
          `resume with --resume ${opts.out}`);
        return 'interrupted';
      }
      await endEpoch(s, runLog, epochNo);
      if (stop?.stopRequested()) {
        runLog.say(`interrupted after epoch ${epochNo}: checkpoint saved; resume with --resume ${opts.out}`);
        return 'interrupted';
      }
    }
    return 'completed';
  } catch (err) {
    if (!(err instanceof DivergedError)) throw err;
    process.stderr.write(`error: ${err.message}\n`);
    runLog.diverged(state.step);
    return 'diverged';
  } finally {
    runLog.close();
    await release(s);
  }
}

/** The training steps of one epoch (those not done before, when resumed mid-epoch), until its end or a stop signal. */
async function trainEpoch(s: Session, runLog: RunLog, epochNo: number): Promise<void> {
  const { cfg, opts, state, model, opt } = s;
  const progress = new Progress(`epoch ${epochNo}/${cfg.epochs}`, s.trainLoader.numBatches, state.batchInEpoch);
  model.train();
  let b = 0;
  for await (const batch of s.trainLoader.batches(epochNo)) {
    if (b++ < state.batchInEpoch) continue; // resumed mid-epoch: these steps were done before the interruption
    opts.transformBatch?.(batch, state.step);
    assertFiniteInput(batch, epochNo, state.step, opts.out);
    opt.lr = learningRate(cfg.schedule, cfg.lr, state.step, s.totalSteps, cfg.warmupFraction);
    const r = stepOnBatch(model, opt, batch, cfg.labelSmoothing);
    assertFiniteLoss(r.loss, epochNo, state.step, opts.out);
    s.lookahead?.afterStep(state.step + 1, s.totalSteps);
    s.ema?.update();
    state.step++;
    state.batchInEpoch++;
    state.acc.lossSum += r.loss * batch.n;
    state.acc.correct += r.correct;
    state.acc.seen += batch.n;
    state.acc.batches++;
    runLog.step(state.step, r.loss, opt.lr, epochNo);
    progress.tick(r.loss, batch.n);
    if (state.batchInEpoch % 100 === 0) {
      progress.line(`[epoch:${epochNo}, iter:${state.step}] Loss: ${(state.acc.lossSum / state.acc.seen).toFixed(3)} | Acc: ${(100 * state.acc.correct / state.acc.seen).toFixed(3)}% | lr ${opt.lr.toPrecision(3)}`);
    }
    // Let the event loop reach its poll phase: signal events are read there, and a loader whose next batch is
    // always ready would otherwise keep the loop in microtasks for a whole epoch.
    await throughPollPhase();
    if (s.stop?.stopRequested()) break;
  }
  progress.done();
}

/** A finished epoch: evaluation, the logs, the checkpoint (and the best model's files when it is the best so far). */
async function endEpoch(s: Session, runLog: RunLog, epochNo: number): Promise<void> {
  const { state, model, opt } = s;
  const trainLoss = state.acc.lossSum / state.acc.seen;
  const trainAcc = state.acc.correct / state.acc.seen;
  const emaState = s.ema?.stateDict() ?? null;
  const ev = await evaluateEpoch({ raw: model, ema: emaState ? emaModelWith(s, emaState) : null },
    { test: s.testLoader, val: s.valLoader }, s.numClasses, s.cfg.ttaEval);
  const seconds = epochElapsed(s);
  const m = ev.metrics;
  const record = { train_loss: trainLoss, train_acc: trainAcc, test_loss: m.test_loss, test_acc: m.test_acc, lr: opt.lr, seconds, ...m };
  s.history.push({ epoch: epochNo, ...record });
  runLog.epoch(epochNo, state.step, record);
  state.epoch = epochNo;
  state.batchInEpoch = 0;
  state.epochSeconds = 0;
  state.acc = { lossSum: 0, correct: 0, seen: 0, batches: 0 };
  // the ranking: the EMA's when there is one (what the run delivers), validation before test (run-folder.ts agrees)
  const ranked = ev.emaTest ? (ev.emaVal ?? ev.emaTest) : (ev.val ?? ev.test);
  const rankedTest = ev.emaTest ?? ev.test;
  const finite = isFiniteStateDict(model.stateDict()) && (emaState === null || isFiniteStateDict(emaState));
  const isBest = Number.isFinite(ranked.acc) && ranked.acc > state.bestAcc && finite;
  if (isBest) state.bestAcc = ranked.acc;
  await saveCheckpoint(s.opts.out, checkpointOf(s, true, record, emaState), { keepLast: s.keepLast, best: isBest });
  if (isBest) writeBestAccuracy(s.opts.out, epochNo, ranked.acc, { test_acc: rankedTest.acc, test_loss: rankedTest.loss, step: state.step, ...(ev.emaTest ? { weights: 'ema' } : {}) });
  runLog.endEpoch(epochSummary(epochNo, s.cfg.epochs, record, isBest));
}

/** The evaluation model of the moving average, holding `state` (built once, on the training model's backend). */
function emaModelWith(s: Session, state: StateDict): ResNet {
  s.emaModel ??= buildModel(s.spec, { seed: s.cfg.seed, backend: s.opts.backend });
  s.emaModel.loadStateDict(state);
  return s.emaModel;
}

/** Wall time of the current epoch so far, earlier processes' part of it included (a mid-epoch resume). */
function epochElapsed(s: Session): number {
  return s.state.epochSeconds + (s.now() - s.epochStart) / 1000;
}

/** The checkpoint of the run as it stands: after a whole epoch (complete) or mid-epoch, when interrupted. */
function checkpointOf(s: Session, complete: boolean, metricsNow?: Record<string, number>, emaState?: StateDict | null): Checkpoint {
  const { cfg, state, opt, ema } = s;
  return {
    model: s.model.stateDict(),
    optimizer: { name: 'sgd', hyper: { lr: opt.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay, nesterov: cfg.nesterov }, buffers: opt.stateDict() },
    epoch: complete ? state.epoch : state.epoch + 1,
    step: state.step,
    config: { ...cfg },
    spec: { ...s.spec },
    datasetFingerprint: s.data.fingerprint,
    metrics: metricsNow,
    rng: { seed: cfg.seed, scheme: 'hash(seed, epoch, index)' },
    trainer: {
      complete, batchInEpoch: complete ? 0 : state.batchInEpoch, bestAcc: state.bestAcc, acc: { ...state.acc }, history: s.history,
      epochSeconds: complete ? 0 : epochElapsed(s),
    } satisfies TrainerSnapshot,
    env: { node: process.version, backend: s.opts.backend.describe(), precision: s.precision, platform: `${process.platform}-${process.arch}` },
    ...(ema ? { ema: { decay: ema.decay, updates: ema.updates, state: emaState ?? ema.stateDict() } } : {}),
    ...(s.lookahead ? { lookahead: { k: s.lookahead.k, syncs: s.lookahead.syncs, state: s.lookahead.stateDict() } } : {}),
  };
}

/** One SGD step on a batch (step.ts); returns the batch's mean loss and number of correct predictions. */
function stepOnBatch(model: ResNet, opt: SGD, batch: Batch, labelSmoothing: number): { loss: number; correct: number } {
  const x = Tensor.fromArray(batch.x, [batch.n, 3, 32, 32], model.backend);
  let correct = 0;
  try {
    const onLogits = (logits: Tensor) => { correct = countCorrect(logits.toArray(), batch.y, logits.shape[1]); };
    const loss = trainStep(model, opt, x, batch.y, { labelSmoothing, onLogits });
    return { loss, correct };
  } finally {
    x.dispose();
  }
}

function countCorrect(logits: ArrayLike<number>, y: Int32Array, C: number): number {
  let correct = 0;
  for (let i = 0; i < y.length; i++) {
    if (argmaxRow(logits, i, C) === y[i]) correct++;
  }
  return correct;
}

async function initFromWeights(model: ResNet, weights: string, log: (l: string) => void): Promise<void> {
  const w = await loadWeights(weights);
  const res = model.loadStateDict(w.stateDict, { strict: false });
  if (res.missing.length || res.unexpected.length || res.mismatched.length) {
    throw new Error(`train: --weights ${weights} does not fit the model: ${describeLoad(res)}`);
  }
  log(`initial weights from ${w.path} (${w.format})${w.notes.length ? `: ${w.notes.join('; ')}` : ''}`);
}

async function resumeFrom(session: Session): Promise<LoadedCheckpoint | null> {
  const { opts, model, opt, data, cfg, state, history, log, warn } = session;
  const dir = typeof opts.resume === 'string' ? opts.resume : opts.out;
  let loaded;
  try {
    loaded = await loadLatestCheckpoint(dir);
  } catch (err) {
    if (err instanceof NoCheckpointError && opts.resume === true) {
      log(`no checkpoint in ${dir} yet: starting a new run`);
      return null;
    }
    throw err;
  }
  loaded.warnings.forEach(warn);
  const c = loaded.checkpoint;
  const diffs = configDifferences(c.config, cfg);
  if (diffs.length && !opts.force) {
    throw new Error(`train: refusing to resume ${loaded.path} with a different configuration (use --force to override):\n  ${diffs.join('\n  ')}`);
  }
  const otherData = !!c.datasetFingerprint && c.datasetFingerprint !== data.fingerprint;
  if (otherData && !opts.force) {
    throw new Error(`train: refusing to resume ${loaded.path}: the dataset differs from the one it was trained on (use --force to override)`);
  }
  diffs.forEach((d) => warn(`resuming with a changed setting (forced): ${d}`));
  if (otherData) warn(`resuming on a dataset whose content differs from the one the checkpoint was trained on (forced)`);
  model.loadStateDict(c.model);
  opt.loadStateDict(c.optimizer.buffers);
  const s = (c.trainer ?? {}) as Partial<TrainerSnapshot>;
  const complete = s.complete !== false;
  state.epoch = complete ? c.epoch : c.epoch - 1;
  state.batchInEpoch = complete ? 0 : (s.batchInEpoch ?? 0);
  state.step = c.step;
  state.bestAcc = s.bestAcc ?? -1;
  state.acc = complete ? state.acc : { ...(s.acc as EpochAccumulator) };
  state.epochSeconds = complete ? 0 : (s.epochSeconds ?? 0); // checkpoints before this field: this process's time only
  history.push(...(s.history ?? []));
  log(`resumed from ${loaded.path}: epoch ${state.epoch}${complete ? '' : ` + ${state.batchInEpoch} steps`}, step ${state.step}`);
  return loaded;
}

function writeRunInfo(opts: TrainOptions, cfg: TrainConfig, data: CifarData, precision: Precision, spec: ModelSpec): void {
  const info = {
    // a path on disk as an absolute one, so that `train --resume RUN` finds it from any folder; "cifar10" stays a name
    config: cfg, model: spec, data: fs.existsSync(opts.data) ? path.resolve(opts.data) : opts.data, classes: data.classes, fingerprint: data.fingerprint, backend: opts.backend.describe(),
    precision, node: process.version,
  };
  saveRunInfo(opts.out, info);
}
