/**
 * The JSON document `lmdistill eval --json` prints and `lmdistill report --eval` reads (snake_case, like
 * metrics.jsonl), its schema, and a plain-text table of it. Non-finite numbers become null in JSON.
 */
import { z } from 'zod';
import type { CalibrationBin, EvalMetrics, ModelMetrics } from './metrics.js';
import type { SpeculativeReport } from './speculative.js';

export interface EvalJsonModel {
  loss: number;
  perplexity: number;
  bits_per_token: number;
  accuracy: number;
  ece: number;
}

export interface EvalJson extends EvalJsonModel {
  model: string;
  teacher: string | null;
  /** what was evaluated, e.g. "embedded:moby-dick (val split)" */
  data: string;
  tokens: number;
  seq_len: number;
  calibration: CalibrationBin[];
  teacher_metrics?: EvalJsonModel;
  divergence?: { fkl: number; rkl: number; tvd: number; top1_agreement: number; acceptance: number };
  speculative?: {
    gamma: number; temperature: number; prompts: number; prompt_len: number; new_tokens: number;
    teacher_calls: number; draft_calls: number; drafted: number; tested: number; accepted: number;
    acceptance_rate: number; expected_acceptance: number; acceptance_std_err: number;
    tokens_per_teacher_call: number; predicted_tokens_per_teacher_call: number;
  };
}

function modelJson(m: ModelMetrics): EvalJsonModel {
  return { loss: m.loss, perplexity: m.perplexity, bits_per_token: m.bitsPerToken, accuracy: m.accuracy, ece: m.ece };
}

/** Assembles the eval JSON from the library results. */
export function toEvalJson(
  meta: { model: string; teacher?: string; data: string; seqLen: number },
  metrics: EvalMetrics,
  spec?: { report: SpeculativeReport; promptLen: number },
): EvalJson {
  const out: EvalJson = {
    model: meta.model, teacher: meta.teacher ?? null, data: meta.data, tokens: metrics.tokens, seq_len: meta.seqLen,
    ...modelJson(metrics.student), calibration: metrics.student.calibration,
  };
  if (metrics.teacher) out.teacher_metrics = modelJson(metrics.teacher);
  const d = metrics.divergence;
  if (d) out.divergence = { fkl: d.forwardKl, rkl: d.reverseKl, tvd: d.tvd, top1_agreement: d.top1Agreement, acceptance: d.acceptance };
  if (spec) {
    const r = spec.report;
    out.speculative = {
      gamma: r.gamma, temperature: r.temperature, prompts: r.prompts, prompt_len: spec.promptLen, new_tokens: r.newTokens,
      teacher_calls: r.targetCalls, draft_calls: r.draftCalls, drafted: r.drafted, tested: r.tested, accepted: r.accepted,
      acceptance_rate: r.acceptanceRate, expected_acceptance: r.expectedAcceptance, acceptance_std_err: r.acceptanceStdErr,
      tokens_per_teacher_call: r.tokensPerTargetCall, predicted_tokens_per_teacher_call: r.predictedTokensPerTargetCall,
    };
  }
  return out;
}

/** JSON text with non-finite numbers as null (JSON.stringify does that too; this keeps it explicit). */
export function evalJsonText(e: EvalJson): string {
  return JSON.stringify(e, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
}

const num = z.number().nullable().transform((v) => v ?? NaN);
const modelFields = { loss: num, perplexity: num, bits_per_token: num.optional(), accuracy: num.optional(), ece: num.optional() };

/** What the report needs from an eval JSON file (extra keys allowed: older or newer files still load). */
export const evalJsonSchema = z.looseObject({
  model: z.string(),
  teacher: z.string().nullable().optional(),
  data: z.string().optional(),
  tokens: z.number(),
  ...modelFields,
  calibration: z.array(z.looseObject({ lo: z.number(), hi: z.number(), count: z.number(), confidence: num, accuracy: num })).optional(),
  teacher_metrics: z.looseObject(modelFields).optional(),
  divergence: z.looseObject({ fkl: num, rkl: num, tvd: num, top1_agreement: num, acceptance: num }).optional(),
  speculative: z.looseObject({
    gamma: z.number(), prompts: z.number(), acceptance_rate: num, expected_acceptance: num.optional(),
    tokens_per_teacher_call: num, predicted_tokens_per_teacher_call: num.optional(),
  }).optional(),
});
export type EvalJsonRead = z.output<typeof evalJsonSchema>;

/** Fixed-precision number, "—" when missing or not finite. */
export function fmtNum(x: number | null | undefined, digits = 3): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—';
}

/** A plain-text table of an eval result (student column, and teacher column when present). */
export function formatEvalTable(e: EvalJson): string {
  const t = e.teacher_metrics;
  const rows: [string, string, string][] = [
    ['perplexity', fmtNum(e.perplexity, 2), fmtNum(t?.perplexity, 2)],
    ['loss (nats/token)', fmtNum(e.loss, 4), fmtNum(t?.loss, 4)],
    ['top-1 accuracy (gold)', fmtNum(e.accuracy), fmtNum(t?.accuracy)],
    [`ECE (${e.calibration.length} bins)`, fmtNum(e.ece, 4), fmtNum(t?.ece, 4)],
  ];
  const d = e.divergence;
  if (d) {
    rows.push(
      ['KL(teacher‖student) /token', fmtNum(d.fkl, 4), ''],
      ['KL(student‖teacher) /token', fmtNum(d.rkl, 4), ''],
      ['TVD /token', fmtNum(d.tvd, 4), ''],
      ['top-1 agreement', fmtNum(d.top1_agreement), ''],
      ['acceptance 1 − TVD', fmtNum(d.acceptance), ''],
    );
  }
  const s = e.speculative;
  if (s) {
    rows.push(
      [`speculative acceptance (γ=${s.gamma})`, `${fmtNum(s.acceptance_rate)} ± ${fmtNum(s.acceptance_std_err)}`, ''],
      ['  expected on visited positions', fmtNum(s.expected_acceptance), ''],
      ['tokens per teacher call', fmtNum(s.tokens_per_teacher_call, 2), ''],
      ['  predicted (1−α^{γ+1})/(1−α)', fmtNum(s.predicted_tokens_per_teacher_call, 2), ''],
    );
  }
  const head: [string, string, string] = ['metric', 'student', t ? 'teacher' : ''];
  const all = [head, ...rows];
  const w = [0, 1, 2].map((c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r: [string, string, string]): string => `${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}${t ? `  ${r[2].padStart(w[2])}` : ''}`.trimEnd();
  const lines = [
    `student ${e.model}${e.teacher ? ` · teacher ${e.teacher}` : ''}`,
    `${e.data} · ${e.tokens} tokens · seq_len ${e.seq_len}${s ? ` · speculative: ${s.prompts} prompts × ${s.prompt_len} tokens, ${s.new_tokens} tokens generated, T=${s.temperature}` : ''}`,
    line(head), ...rows.map(line),
  ];
  return lines.join('\n') + '\n';
}
