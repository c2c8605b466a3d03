/** The `--precision` option shared by train, eval, predict, serve and bench (src/backend/precision.ts resolves it). */
import { Option } from 'commander';
import { PRECISION_CHOICES, type PrecisionChoice } from '../backend/precision';

export function precisionOption(defaultChoice: PrecisionChoice): Option {
  return new Option('--precision <p>', 'fp32, bf16 (mixed precision; needs AVX512_BF16 or AMX-BF16) or auto (bf16 where the CPU has it)')
    .choices(PRECISION_CHOICES)
    .default(defaultChoice);
}
