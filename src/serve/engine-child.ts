/**
 * The inference process of `resnet serve`: a child process with its own classifier (weights, backend, oneDNN
 * engine), loaded on the first request and then classifying batches of preprocessed inputs, so that the server's
 * main thread stays free for HTTP while a forward pass runs. Started by engine.ts; not an entry point for
 * anything else.
 *
 * Why a process and not a worker thread: a crash of native code or a hung forward pass then costs a restart (the
 * server answers 503 and starts a new one), not the server. (A worker thread first crashed for another reason, a
 * oneDNN Winograd primitive run on a thread other than its creator's; the addon's per-thread primitive cache,
 * native/context.cc, has fixed that.)
 * Requests are answered one at a time in arrival order (a forward pass is synchronous). A failure of the model on
 * a batch is a reply ({error}); only a failure of the process itself ends it. It exits when the server goes.
 */
import { setOpenMpProfile } from '../backend/native';
import { Classifier, LoadClassifierOptions, ModelInfo, loadClassifier } from '../predict/classifier';
import type { Prediction } from '../predict/prediction';

/** What the process loads: the weights and the classifier's options (backend, precision, tta, ema). */
export interface ModelSource extends LoadClassifierOptions {
  readonly weights: string;
}

/** What the server asks, without the request id (the channel adds it). */
export type EngineAsk = { kind: 'load'; source: ModelSource; warmup: number[] } | { kind: 'classify'; x: Float32Array; n: number };
export type EngineRequest = EngineAsk & { id: number };

export type EngineReply = { id: number; info: ModelInfo } | { id: number; predictions: Prediction[] } | { id: number; error: string };

// a process of its own, so it chooses its own OpenMP profile (src/cli/main.ts does it for the CLI's processes)
setOpenMpProfile('latency');
const send = process.send?.bind(process);
if (send === undefined) throw new Error('engine-child: must run as a child process with an IPC channel (started by src/serve/engine.ts)');
let classifier: Classifier | null = null;

async function answer(req: EngineRequest): Promise<EngineReply> {
  if (req.kind === 'load') {
    const s = req.source;
    classifier ??= await loadClassifier(s.weights, { backend: s.backend, precision: s.precision, tta: s.tta, ema: s.ema });
    // each batch size's first forward creates (and may time) the native backend's convolutions: done here, before
    // the first request; the reference backend creates nothing per size (and a batch of 32 takes it seconds)
    // the first request after it then runs on warm weights: the largest size first and batch 1 (the lone upload's)
    // last, since after a batch of 32 a batch-1 forward took 50 ms against 7-12 ms (2-core Zen 4)
    if (classifier.info.backend === 'native') {
      for (const n of [...req.warmup].sort((a, b) => b - a)) classifier.classifyBatch(new Float32Array(n * 3 * 32 * 32), n);
    }
    return { id: req.id, info: classifier.info };
  }
  if (classifier === null) throw new Error('classify: the model is not loaded yet (expected a load request first)');
  // one input alone runs as classifyInput: the same numbers, bit for bit, as `resnet predict` on that file
  const predictions = req.n === 1 ? [classifier.classifyInput(req.x)] : classifier.classifyBatch(req.x, req.n);
  return { id: req.id, predictions };
}

// one at a time: a load finishes before the batches behind it run
let last: Promise<void> = Promise.resolve();
process.on('message', (req: EngineRequest) => {
  last = last.then(() =>
    answer(req).then(
      (reply) => void send(reply),
      (err: unknown) => void send({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies EngineReply),
    ),
  );
});
// the server is gone (closed, or ended without closing us): nothing is left to answer
process.on('disconnect', () => process.exit(0));
// a server that ended while this module was still loading disconnected before the listener above existed
if (!process.connected) process.exit(0);
// Ctrl-C reaches the whole process group: the server decides when this process ends (after its in-flight batches)
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
