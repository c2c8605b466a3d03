/** `resnet bench [--json]`: the engine benchmark (src/bench/model-bench.ts) on this machine. */
import { Command } from 'commander';
import { intInRange } from '../parse';
import { useBackend } from '../../backend';
import { runBench } from '../../bench/model-bench';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure ResNet-18 training and inference speed on this machine (random inputs)')
    .option('--json', 'print one JSON object (train_img_s, infer_img_s, latency_ms_b1, peak_rss_mb, ...)')
    .option('--batch <n>', 'batch size', intInRange(1), 128)
    .option('--steps <n>', 'timed training steps after one warm-up', intInRange(1), 5)
    .option('--profile', 'per-kernel time of the training step (native backend)')
    .action((opts: { json?: boolean; batch: number; steps: number; profile?: boolean }) => {
      if (opts.profile) process.env.RESNET_PROFILE = '1';
      const backend = useBackend(program.opts().backend);
      const log = opts.json ? undefined : (m: string) => process.stderr.write(`${m}\n`);
      const r = runBench({ backend, batch: opts.batch, steps: opts.steps, log });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      const lines = [
        `backend          ${r.backend} (${r.backend_detail})`,
        `training         ${r.train_img_s.toFixed(1)} img/s  (batch ${r.batch}: ${r.train_step_ms.toFixed(0)} ms per step: forward, backward, SGD)`,
        `inference        ${r.infer_img_s.toFixed(1)} img/s  (batch ${r.batch})`,
        `latency          ${r.latency_ms_b1.toFixed(2)} ms  (batch 1)`,
        `peak memory      ${r.peak_rss_mb.toFixed(0)} MB resident`,
      ];
      if (r.profile) {
        lines.push('training step by kernel (share of step time):');
        for (const [k, v] of Object.entries(r.profile)) {
          lines.push(`  ${k.padEnd(28)} ${(v.share * 100).toFixed(1).padStart(5)}%  ${(v.ms / r.steps).toFixed(1).padStart(8)} ms/step  ${String(v.calls / r.steps).padStart(4)} calls/step`);
        }
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
