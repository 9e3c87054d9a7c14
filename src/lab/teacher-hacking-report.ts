/** The teacher-hacking lab's report: what the paper claims, what we measured, plots and a verdict. */
import { lineChart, type Series } from './svg.js';
import { writeLabReport } from './report.js';
import { powerLawDeviation } from './bench-s.js';
import type { TeacherHackingResult } from './teacher-hacking.js';

const f = (x: number, d = 4): string => (Number.isFinite(x) ? x.toFixed(d) : '—');

export function teacherHackingVerdict(r: TeacherHackingResult): { hackingOffline: boolean; mitigated: string[]; notMitigated: string[] } {
  const off = r.regimes.find((g) => g.name === 'offline');
  const rose = (name: string): boolean => {
    const g = r.regimes.find((x) => x.name === name);
    return !!g && g.goldenRisePct > 5 && g.proxyTrainFinal < g.points[0].proxyTrain;
  };
  const hackingOffline = !!off && rose('offline');
  const others = r.regimes.filter((g) => g.name !== 'offline');
  const mitigated = others.filter((g) => off && g.goldenRisePct < off.goldenRisePct / 2 && g.goldenFinal < off.goldenFinal).map((g) => g.name);
  return { hackingOffline, mitigated, notMitigated: others.map((g) => g.name).filter((n) => !mitigated.includes(n)) };
}

export function writeTeacherHackingReport(dir: string, r: TeacherHackingResult, seeds: TeacherHackingResult[] = [r]): { html: string; md: string } {
  const sp = r.spec;
  const v = teacherHackingVerdict(r);
  const table = [
    '| regime | golden KL(oracle‖student) min (step) | golden final | golden rise after min | proxy KL(teacher‖student) held-out, final | proxy on training sequences, final | power-law deviation flagged at |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.regimes.map((g) => `| ${g.label} | ${f(g.goldenMin.value)} (${g.goldenMin.step}) | ${f(g.goldenFinal)} | ${g.goldenRisePct.toFixed(1)} % | ${f(g.proxyFinal)} | ${f(g.proxyTrainFinal)} | ${g.detector.fireStep ?? 'never'} |`),
  ].join('\n');
  const golden: Series[] = r.regimes.map((g) => ({ name: g.name, points: g.points.map((p) => [p.step, p.golden]) }));
  const proxyTrain: Series[] = r.regimes.map((g) => ({ name: g.name, points: g.points.map((p) => [p.step, p.proxyTrain]) }));
  const proxyHeld: Series[] = r.regimes.map((g) => ({ name: g.name, points: g.points.map((p) => [p.step, p.proxy]) }));
  const pvg: Series[] = r.regimes.map((g) => ({ name: g.name, points: g.points.filter((p) => p.step > 0).map((p) => [p.proxyTrain, p.golden]) }));
  const off = r.regimes.find((g) => g.name === 'offline') ?? r.regimes[0];
  const det = powerLawDeviation(off.points.map((p) => ({ step: p.step, value: p.proxyTrain })));
  const fitSeries: Series[] = [
    { name: 'offline proxy (train)', points: off.points.filter((p) => p.step > 0).map((p) => [p.step, p.proxyTrain]) },
    { name: `power-law fit (≤ step ${det.fitUntil})`, dashed: true, points: off.points.filter((p) => p.step > 0).map((p) => [p.step, det.fit(p.step)]) },
    { name: 'offline golden', points: off.points.filter((p) => p.step > 0).map((p) => [p.step, p.golden]) },
  ];
  const markers = [{ x: off.goldenMin.step, label: 'golden min' }, ...(off.detector.fireStep ? [{ x: off.detector.fireStep, label: 'fit deviates' }] : [])];
  const verdict = [
    v.hackingOffline
      ? `**Reproduced (qualitatively):** with the fixed offline dataset the golden metric reaches its minimum at step ${off.goldenMin.step} and then rises by ${off.goldenRisePct.toFixed(1)} % while the proxy on the training sequences keeps falling (${f(off.points[0].proxyTrain)} → ${f(off.proxyTrainFinal)}).`
      : `**Not reproduced at this size/run:** the offline golden metric rose by only ${off.goldenRisePct.toFixed(1)} % after its minimum (threshold 5 %).`,
    `For scale: the teacher's own golden KL(oracle‖teacher) is ${f(r.teacher.goldenFkl)} (over-trained from its best ${f(r.teacher.bestGolden)}). ${off.goldenFinal > r.teacher.goldenFkl ? `The offline student ends **worse than its teacher** on the golden metric (${f(off.goldenFinal)}), while` : 'Meanwhile'} the online students end at ${r.regimes.filter((g) => g.name.startsWith('online')).map((g) => f(g.goldenFinal)).join(' / ')}. Every regime shows some rise after its minimum: the student passes through a smoother point that is closer to the oracle than the over-confident teacher before converging toward the teacher; the offline dataset makes the rise larger and the end point worse.`,
    v.mitigated.length ? `Regimes that mitigate it (golden rise under half of offline's and a lower final golden): ${v.mitigated.join(', ')}.` : 'No regime mitigated it by our criterion.',
    v.notMitigated.length ? `Regimes that did not meet that criterion: ${v.notMitigated.join(', ')}.` : '',
    `The proxy measured on held-out prompts is not the one that keeps falling: under offline it ends at ${f(off.proxyFinal)} after a minimum of ${f(Math.min(...off.points.map((p) => p.proxy)))} — the student overfits the teacher's responses to the training prompts. The paper's "proxy keeps improving" corresponds to the proxy on the training data.`,
    `Power-law detector (log-log line fitted to the first 20 % of the training-sequence proxy curve, flag at a 3σ / 3 % residual): ${r.regimes.map((g) => `${g.name} → ${g.detector.fireStep ?? 'never'}`).join(', ')}. As the independent replication warned, at this scale the fit can also flag online runs once the small student saturates; we report it as measured rather than tuning it.`,
  ].filter(Boolean).join('\n\n');
  return writeLabReport(dir, {
    title: `Lab: teacher hacking (${r.size})`,
    sections: [
      { heading: 'What the paper claims', body: '"On Teacher Hacking in Language Model Distillation": in an oracle → teacher → student chain, distilling with a **fixed offline dataset** lets the student exploit the imperfect teacher: the proxy metric (student–teacher distance) keeps improving while the golden metric (student–oracle distance) gets worse, visible as the proxy curve leaving a polynomial convergence law. **Online** data generation mitigates it, and **data diversity** (more prompts, more completions per prompt) is the key factor.' },
      { heading: 'Setup (all reconstructed; Bench-S)', body: [
        `- oracle: a fixed random GPT-2 (${sp.oracle.n_layer}L/d${sp.oracle.n_embd}) over V=${sp.V} with its final LayerNorm gain set to ${sp.gain} (peaked, exact conditionals); held-out entropy ${f(r.oracleEntropy, 3)} nats/token`,
        `- teacher: GPT-2 ${sp.teacher.n_layer}L/d${sp.teacher.n_embd}, next-token CE on ${sp.teacherData} oracle sequences for ${sp.teacherSteps} steps (batch ${sp.batch}); KL(oracle‖teacher) on held-out teacher samples ${f(r.teacher.goldenFkl)} (best during training ${f(r.teacher.bestGolden)} at step ${r.teacher.bestStep}: the teacher is imperfect)`,
        `- student: GPT-2 ${sp.student.n_layer}L/d${sp.student.n_embd}, token forward KL to the teacher on response positions (prompt ${sp.P} tokens, ${sp.S - sp.P} response tokens), ${sp.steps} steps, batch ${sp.batch}, lr ${sp.lr} (AdamW, constant after warm-up), same initialisation in every regime`,
        `- metrics every ${sp.evalEvery} steps on ${sp.heldOut} held-out prompts with teacher responses: proxy = KL(teacher‖student), golden = KL(oracle‖student) (token means); proxy also on the regime's training sequences`,
        `- run time ${r.seconds.toFixed(0)} s`,
      ].join('\n') },
      { heading: 'Results', body: table },
      { heading: 'Verdict', body: verdict },
      ...(seeds.length > 1 ? [{ heading: `Across ${seeds.length} seeds (oracle, teacher, data and student all re-drawn)`, body: seedTable(seeds) }] : []),
      { heading: 'Figures', body: 'Golden metric over training (lower is better); proxy on training sequences and on held-out prompts; golden vs proxy (the paper\'s clearest picture: offline ends worse on golden at equal proxy); the offline proxy against its early power-law fit.', figures: [
        { name: 'golden', svg: lineChart(golden, { title: 'golden: KL(oracle‖student), held-out', xLabel: 'step', yLabel: 'KL (nats/token)', logY: true }) },
        { name: 'proxy-train', svg: lineChart(proxyTrain, { title: 'proxy on training sequences: KL(teacher‖student)', xLabel: 'step', yLabel: 'KL (nats/token)', logY: true }) },
        { name: 'proxy-heldout', svg: lineChart(proxyHeld, { title: 'proxy on held-out prompts: KL(teacher‖student)', xLabel: 'step', yLabel: 'KL (nats/token)', logY: true }) },
        { name: 'golden-vs-proxy', svg: lineChart(pvg, { title: 'golden vs proxy (training sequences)', xLabel: 'proxy KL(teacher‖student)', yLabel: 'golden KL(oracle‖student)', logX: true, logY: true }) },
        { name: 'powerlaw-offline', svg: lineChart(fitSeries, { title: 'offline: proxy vs early power-law fit', xLabel: 'step', yLabel: 'KL (nats/token)', logX: true, logY: true, markers }) },
      ] },
    ],
  });
}

function seedTable(runs: TeacherHackingResult[]): string {
  const names = runs[0].regimes.map((g) => g.name);
  const head = `| regime | ${runs.map((_, i) => `seed ${i}: golden rise / final`).join(' | ')} | mean final golden |`;
  const rows = names.map((n) => {
    const cells = runs.map((r) => { const g = r.regimes.find((x) => x.name === n)!; return `${g.goldenRisePct.toFixed(1)} % / ${f(g.goldenFinal)}`; });
    const mean = runs.reduce((a, r) => a + r.regimes.find((x) => x.name === n)!.goldenFinal, 0) / runs.length;
    return `| ${n} | ${cells.join(' | ')} | ${f(mean)} |`;
  });
  const verdicts = runs.map((r, i) => { const v = teacherHackingVerdict(r); return `seed ${i}: offline hacking ${v.hackingOffline ? 'yes' : 'no'}; mitigated by ${v.mitigated.join(', ') || 'none'}`; });
  return [head, `|---|${runs.map(() => '---:').join('|')}|---:|`, ...rows].join('\n') + '\n\n' + verdicts.map((l) => `- ${l}`).join('\n');
}
