/**
 * Backend.rowLosses (reference, and native on every ISA this CPU has) against the PyTorch golden
 * fixture (tools/golden/objectives.py) for the cases the backend kernels cover: ce, fkl and rkl with a
 * dense teacher. Rows holding a -inf logit must be refused (the fused loss recomputes them with the
 * objectives' kernels, which golden.test.ts checks); every other row is compared.
 * Tolerance as golden.test.ts: |ours − torch| ≤ 1e-5 + 1e-4·|torch|.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend } from '../../src/backend/backend.js';
import { nativeBackend, nativeInfo } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref.js';
import { backendRowPlan } from '../../src/distill/backend-rows.js';
import { Mixture, tokenMask } from '../../src/distill/index.js';
import { readFixture, type JsonTensor } from '../helpers/fixtures.js';
import { assertClose, withNegInf } from './helpers.js';

const ATOL = 1e-5, RTOL = 1e-4;

interface LogitCase {
  name: string; objective: string; options: Record<string, unknown>; B: number; T: number; V: number;
  student: JsonTensor; teacher?: JsonTensor; sparse?: unknown; labels: JsonTensor; mask: JsonTensor;
  neg_inf?: { student: number[]; teacher: number[] }; per_token: JsonTensor; grad: JsonTensor;
}
const fixture = readFixture<{ logit_cases: LogitCase[] }>('golden/objectives.json');
const covered = fixture.logit_cases.filter((c) => ['ce', 'fkl', 'rkl'].includes(c.objective) && !c.sparse);

function check(be: Backend, c: LogitCase): void {
  const N = c.B * c.T, V = c.V;
  const plan = backendRowPlan(Mixture.parse({ objective: c.objective, ...c.options }, c.name));
  assert.ok(plan && plan.parts.length === 1);
  const z = withNegInf(c.student, c.neg_inf?.student).data;
  const t = c.teacher ? withNegInf(c.teacher, c.neg_inf?.teacher).data : null;
  const labels = Int32Array.from(c.labels.data);
  const mask = tokenMask(N, { mask: c.mask.data, labels });
  const count = mask.reduce((a, b) => a + b, 0);
  const call = (weights: Float32Array) => {
    const out = { grad: new Float32Array(N * V), partLosses: new Float64Array(N), refused: new Uint8Array(N) };
    be.rowLosses({ rows: N, V, z, teacher: plan.parts[0].kind === 'ce' ? null : t, labels: plan.parts[0].kind === 'ce' ? labels : null, weights, parts: plan.parts, ...out });
    return out;
  };
  const all = call(new Float32Array(N).fill(1)); // per-token losses of every row
  const meanGrad = call(Float32Array.from(mask, (m) => m / count)); // gradient of the masked mean
  let compared = 0;
  for (let r = 0; r < N; r++) {
    const nonFinite = [...z.subarray(r * V, (r + 1) * V), ...(t ? t.subarray(r * V, (r + 1) * V) : [])].some((x) => !Number.isFinite(x));
    assert.equal(all.refused[r], nonFinite ? 1 : 0, `row ${r}: refused`);
    if (nonFinite) continue;
    compared++;
    assertClose([all.partLosses[r]], [c.per_token.data[r]], ATOL, RTOL, `row ${r} loss`);
    assertClose(meanGrad.grad.subarray(r * V, (r + 1) * V), c.grad.data.slice(r * V, (r + 1) * V), ATOL, RTOL, `row ${r} grad`);
  }
  if (!c.neg_inf) assert.ok(compared > 0, 'no row compared'); // '-inf both' cases have a -inf in every row
}

describe('golden: Backend.rowLosses vs PyTorch', () => {
  test('fixture has the covered objectives', () => {
    assert.deepEqual([...new Set(covered.map((c) => c.objective))].sort(), ['ce', 'fkl', 'rkl']);
  });
  const backends: Backend[] = nativeBackend ? [refBackend, nativeBackend] : [refBackend];
  if (!nativeBackend) test('native rowLosses', (t) => { t.skip(`native addon unavailable: ${nativeInfo().reason}`); });
  for (const be of backends) for (const c of covered) test(`${be.name}: ${c.name}`, () => check(be, c));
});
