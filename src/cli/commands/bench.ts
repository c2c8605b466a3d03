/** `resnet bench [--json]`: the engine benchmark (src/bench/model-bench.ts) on this machine. */
import { spawnSync } from 'node:child_process';
import { Command, Option } from 'commander';
import { intInRange } from '../parse';
import { useBackend } from '../../backend';
import { runBench, runLatency } from '../../bench/model-bench';
import { envForChildProfile, forgetConvChoices, openMpSetting, type OpenMpSetting } from '../../backend/native';
import { applyPrecision } from '../../backend/precision';
import { precisionOption } from '../precision';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure ResNet-18 training and inference speed on this machine (random inputs)')
    .option('--json', 'print one JSON object (train_img_s, infer_img_s, latency_ms_b1, peak_rss_mb, ...)')
    .option('--batch <n>', 'batch size', intInRange(1), 128)
    .option('--steps <n>', 'timed training steps after one warm-up', intInRange(1), 5)
    .option('--profile', 'per-kernel time of the training step and each convolution\'s algorithm (native backend)')
    .addOption(precisionOption('fp32'))
    .option('--retune', 'forget this machine\'s measured convolution choices first and measure them all again (after they were measured on a busy machine)')
    .addOption(new Option('--latency-only', 'only the batch-1 latency, in OpenMP\'s latency profile (what predict and serve use)').hideHelp())
    .action((opts: { json?: boolean; batch: number; steps: number; profile?: boolean; precision: string; retune?: boolean; latencyOnly?: boolean }) => {
      if (opts.profile) process.env.RESNET_PROFILE = '1';
      if (opts.retune) {
        const gone = forgetConvChoices();
        process.stderr.write(gone
          ? `retune: forgot ${gone.entries} measured choices (${gone.file}); every convolution is timed again, on first use\n`
          : 'retune: no saved convolution choices to forget (no cache file, or RESNET_CONV_CACHE=off)\n');
      }
      const backend = useBackend(program.opts().backend);
      applyPrecision(opts.precision, backend);
      if (opts.latencyOnly) {
        process.stdout.write(`${JSON.stringify({ latency_ms_b1: runLatency({ backend }), openmp: openMpSetting() })}\n`);
        return;
      }
      const log = opts.json ? undefined : (m: string) => process.stderr.write(`${m}\n`);
      const r = runBench({ backend, batch: opts.batch, steps: opts.steps, log });
      const served = backend.name === 'native' ? latencyInServingProfile(program.opts().backend as string | undefined, opts.precision, log) : null;
      if (served !== null) {
        r.latency_ms_b1_throughput_profile = r.latency_ms_b1;
        r.latency_ms_b1 = served.latencyMs;
        r.latency_openmp = served.openmp;
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      const lines = [
        `backend          ${r.backend} (${r.backend_detail})`,
        `cpu              ${r.cpu}; kernels: ${r.isa}; precision ${r.precision}`,
        `training         ${r.train_img_s.toFixed(1)} img/s  (batch ${r.batch}: ${r.train_step_ms.toFixed(0)} ms per step: forward, backward, SGD)`,
        `inference        ${r.infer_img_s.toFixed(1)} img/s  (batch ${r.batch}; folded inference graph; training graph in eval mode ${r.infer_img_s_unfused.toFixed(1)})`,
        `latency          ${r.latency_ms_b1.toFixed(2)} ms  (batch 1, as predict and serve run it${r.latency_ms_b1_throughput_profile === undefined ? '' : `; ${r.latency_ms_b1_throughput_profile.toFixed(2)} ms with training's sleeping OpenMP threads`}; training graph ${r.latency_ms_b1_unfused.toFixed(2)} ms)`,
        `peak memory      ${r.peak_rss_mb.toFixed(0)} MB resident`,
      ];
      if (r.profile) {
        lines.push('training step by kernel (share of step time):');
        for (const [k, v] of Object.entries(r.profile)) {
          lines.push(`  ${k.padEnd(28)} ${(v.share * 100).toFixed(1).padStart(5)}%  ${(v.ms / r.steps).toFixed(1).padStart(8)} ms/step  ${String(v.calls / r.steps).padStart(4)} calls/step`);
        }
      }
      for (const c of r.infer_whole_graph_checks ?? []) {
        lines.push(`inference at batch ${c.batch}: ${c.directMs <= c.chosenMs ? 'oneDNN direct in every layer' : 'the per-layer choices below'} (whole forward ${c.chosenMs.toFixed(2)} ms with the per-layer choices, ${c.directMs.toFixed(2)} ms with direct)`);
      }
      for (const c of r.infer_whole_graph_saved ?? []) {
        lines.push(`inference at batch ${c.batch}: ${c.direct ? 'oneDNN direct in every layer' : 'the per-layer choices below'} (the whole-graph check's decision, from the cache file)`);
      }
      if (r.conv_choices?.length) {
        lines.push('convolution algorithms (pass|input|weights|stride|padding: chosen, measured ms per candidate):');
        for (const c of r.conv_choices) {
          const ms = Object.entries(c.ms).map(([a, t]) => `${a} ${t.toFixed(1)}`).join(', ');
          lines.push(`  ${c.key.padEnd(48)} ${c.algo.padEnd(16)} ${ms || '(from the cache file)'}`);
        }
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/**
 * Batch-1 latency as predict and serve see it: OpenMP's wait policy is fixed when the addon loads, so it is measured
 * in a child `resnet bench --latency-only` (latency profile). null, with a note, when the child fails.
 */
function latencyInServingProfile(backend: string | undefined, precision: string, log?: (m: string) => void): { latencyMs: number; openmp: OpenMpSetting } | null {
  const args = [...process.execArgv, process.argv[1], ...(backend ? ['--backend', backend] : []), 'bench', '--latency-only', '--precision', precision];
  // the child picks its own profile (src/cli/main.ts): not this process's OMP_WAIT_POLICY=passive
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: envForChildProfile() });
  const line = r.status === 0 ? r.stdout.trim().split('\n').pop() : undefined;
  try {
    if (line) {
      const c = JSON.parse(line) as { latency_ms_b1: number; openmp: OpenMpSetting };
      return { latencyMs: c.latency_ms_b1, openmp: c.openmp };
    }
  } catch { /* reported below */ }
  (log ?? ((m: string) => process.stderr.write(`${m}\n`)))(`note: the batch-1 latency in the latency profile could not be measured (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); the figure is this process's`);
  return null;
}
