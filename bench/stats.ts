/**
 * Summary statistics. Medians because the machines this runs on are shared and noisy: a few
 * slow outliers from a neighbour must not move the headline figure.
 */

export interface Summary {
  /** Number of samples. */
  n: number;
  median: number;
  /** Nearest-rank 95th percentile: an observed value, never below the median. */
  p95: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  for (const s of samples) if (!Number.isFinite(s)) throw new Error(`summarize: non-finite sample ${s}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const at = (i: number): number => sorted[Math.min(n - 1, Math.max(0, i))] as number;
  const median = n % 2 === 1 ? at((n - 1) / 2) : (at(n / 2 - 1) + at(n / 2)) / 2;
  return {
    n,
    median,
    p95: at(Math.ceil(0.95 * n) - 1),
    min: at(0),
    max: at(n - 1),
    mean: sorted.reduce((a, b) => a + b, 0) / n,
  };
}

export const median = (samples: readonly number[]): number => summarize(samples).median;
