/**
 * The lab: paper-reproduction experiments at toy scale, each a function returning its measurements and
 * a report writer (markdown + HTML with inline SVG). Built only from the public API.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabEvent, LabSize } from './bench-s.js';

export type { LabEvent, LabSize } from './bench-s.js';

export interface LabExperiment {
  name: string;
  summary: string;
  /** runs the experiment, writes `<outDir>/result.json` and the report; returns the report paths and a one-line result */
  run(o: { size: LabSize; outDir: string; seed?: number; onEvent?: (e: LabEvent) => void }): Promise<{ html: string; md: string; headline: string }>;
}

function saveJson(dir: string, obj: unknown): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify(obj, null, 1) + '\n');
}

export const LAB_EXPERIMENTS: LabExperiment[] = [
  {
    name: 'teacher-hacking',
    summary: 'oracle → teacher → student: offline vs online vs more diverse data; proxy vs golden metric (On Teacher Hacking in LM Distillation)',
    async run(o) {
      const { runTeacherHacking } = await import('./teacher-hacking.js');
      const { writeTeacherHackingReport, teacherHackingVerdict } = await import('./teacher-hacking-report.js');
      // the full run repeats the whole chain (oracle, teacher, students) over 3 seeds: the paper's effect
      // must show in every seed, not in one lucky draw
      const seeds = o.size === 'full' ? [0, 1, 2].map((s) => s + (o.seed ?? 0)) : [o.seed ?? 0];
      const runs = [];
      for (const seed of seeds) {
        o.onEvent?.({ type: 'log', message: `seed ${seed}` });
        runs.push(await runTeacherHacking({ size: o.size, seed, onEvent: o.onEvent }));
      }
      const r = runs[0];
      saveJson(o.outDir, runs);
      const v = teacherHackingVerdict(r);
      const off = r.regimes.find((g) => g.name === 'offline');
      return {
        ...writeTeacherHackingReport(o.outDir, r, runs),
        headline: `offline golden rise ${off?.goldenRisePct.toFixed(1)}% after its minimum (hacking ${v.hackingOffline ? 'reproduced' : 'not reproduced'}); mitigated by: ${v.mitigated.join(', ') || 'none'}`,
      };
    },
  },
  {
    name: 'capacity-gap',
    summary: 'one student, teachers of several sizes: student quality vs teacher/student size ratio (MiniMA law of capacity gap)',
    async run(o) {
      const { runCapacityGap, writeCapacityGapReport } = await import('./capacity-gap.js');
      const r = await runCapacityGap({ size: o.size, seed: o.seed, onEvent: o.onEvent });
      saveJson(o.outDir, r);
      return writeCapacityGapReport(o.outDir, r);
    },
  },
  {
    name: 'taid',
    summary: 'FKL / RKL / TAID as the teacher–student size gap grows (TAID)',
    async run(o) {
      const { runTaid, writeTaidReport } = await import('./taid.js');
      const r = await runTaid({ size: o.size, seed: o.seed, onEvent: o.onEvent });
      saveJson(o.outDir, r);
      return writeTaidReport(o.outDir, r);
    },
  },
  {
    name: 'spec-drafter',
    summary: 'drafter distilled with offline FKL vs on-policy FKL/TVD/RKL → speculative acceptance (DistillSpec)',
    async run(o) {
      const { runSpecDrafter, writeSpecDrafterReport } = await import('./spec-drafter.js');
      const r = await runSpecDrafter({ size: o.size, seed: o.seed, onEvent: o.onEvent });
      saveJson(o.outDir, r);
      return writeSpecDrafterReport(o.outDir, r);
    },
  },
];

export function getExperiment(name: string): LabExperiment | undefined {
  return LAB_EXPERIMENTS.find((e) => e.name === name);
}
