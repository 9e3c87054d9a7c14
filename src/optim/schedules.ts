/**
 * Learning-rate schedules. `step` is 0-based: the rate used by the step-th optimizer update.
 */
export interface ScheduleOptions {
  kind: 'cosine' | 'constant' | 'linear';
  peakLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** floor reached at the end of the decay (cosine/linear) */
  minLr: number;
}

/** Linear warmup to peak over `warmupSteps` (lr·(s+1)/warmup), then cosine / linear decay to minLr. */
export function learningRate(s: ScheduleOptions, step: number): number {
  if (step < s.warmupSteps) return (s.peakLr * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.peakLr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  if (s.kind === 'linear') return s.peakLr + (s.minLr - s.peakLr) * progress;
  return s.minLr + 0.5 * (s.peakLr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
