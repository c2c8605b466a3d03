/** What CPU this is, as /proc/cpuinfo says (Linux): the model name and the instruction-set flags. */
import { readFileSync } from 'node:fs';

function cpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/** e.g. "AMD EPYC" or "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"; "unknown" where /proc/cpuinfo is absent. */
export function cpuModel(): string {
  return cpuinfo().match(/^model name\s*:\s*(.*)$/m)?.[1].trim() ?? 'unknown';
}

/** The flags of the first CPU (avx2, avx512f, avx512_bf16, amx_bf16, ...). */
export function cpuFlags(): Set<string> {
  return new Set((cpuinfo().match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/).filter(Boolean));
}
