/**
 * The attention kernels' memory layouts (AttentionDims.layout): reading q/k/v heads straight out of a
 * packed projection or a padded [B, T, H, D] buffer, and writing out / gq / gk / gv the same way, must give
 * exactly what the same backend computes on dense [B, H, T, D] copies — bit for bit, since the kernels
 * only change where rows are read and written — and must not touch any element outside the layout.
 * Runs on the reference backend and on every native instruction set.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionDims, AttentionLayout, Backend, HeadLayout } from '../../src/backend/backend.js';
import { gatherHeads, scatterHeads } from '../../src/backend/ref-fused.js';
import { refBackend } from '../../src/backend/ref.js';
import { packedAttentionDims } from '../../src/tensor/ops.js';
import { Rng } from '../../src/util/rng.js';
import { forEachNativeIsa, randn } from '../helpers/native-diff.js';

const SENTINEL = -12345.5;

/** A [B, T, heads, D + pad] layout at `offset` of a buffer (rows of different heads interleaved, padded). */
const interleaved = (offset: number, B: number, rows: number, heads: number, D: number, pad: number): HeadLayout =>
  ({ offset, sB: rows * heads * (D + pad), sH: D + pad, sT: heads * (D + pad) });

interface Case { d: AttentionDims; bufLen: { qkv: number; out: number }; shared: boolean }

function cases(): Case[] {
  const list: Case[] = [];
  // packed qkv exactly as GPT-2's c_attn output (q, k and v in one buffer; their gradients too)
  for (const [B, T, H, Hkv, D, causal] of [[2, 5, 3, 3, 4, true], [1, 9, 4, 2, 3, true], [2, 7, 2, 1, 5, false], [1, 40, 4, 4, 16, true]] as const) {
    const d = packedAttentionDims([B, T, (H + 2 * Hkv) * D], H, Hkv, causal, 1 / Math.sqrt(D));
    list.push({ d, bufLen: { qkv: B * T * (H + 2 * Hkv) * D, out: B * T * H * D }, shared: true });
  }
  // separate, padded buffers with T ≠ S (a KV cache) and offsets
  for (const [B, H, Hkv, T, S, D, causal] of [[2, 4, 2, 3, 8, 5, true], [1, 2, 1, 6, 6, 7, false], [1, 2, 2, 1, 5, 3, true]] as const) {
    const q = interleaved(3, B, T, H, D, 2), k = interleaved(1, B, S, Hkv, D, 1), v = interleaved(0, B, S, Hkv, D, 3), out = interleaved(5, B, T, H, D, 1);
    const len = (L: HeadLayout, heads: number, rows: number) => L.offset + B * L.sB + heads * L.sH + rows * L.sT + D + 4;
    list.push({
      d: { B, H, Hkv, T, S, D, causal, scale: 0.37, layout: { q, k, v, out } },
      bufLen: { qkv: Math.max(len(q, H, T), len(k, Hkv, S), len(v, Hkv, S)), out: len(out, H, T) },
      shared: false,
    });
  }
  return list;
}

function check(backend: Backend): void {
  const rng = new Rng(41);
  for (const { d, bufLen, shared } of cases()) {
    const L = d.layout as AttentionLayout;
    const { B, H, Hkv, T, S, D } = d;
    const label = `B${B} H${H}/${Hkv} T${T} S${S} D${D}${shared ? ' packed' : ' padded'}`;
    // operand buffers: one shared buffer (packed) or one per operand, filled with sentinels off-layout
    const fill = (n: number) => new Float32Array(n).fill(SENTINEL);
    const qb = fill(bufLen.qkv), kb = shared ? qb : fill(bufLen.qkv), vb = shared ? qb : fill(bufLen.qkv);
    const q = randn(B * H * T * D, rng), k = randn(B * Hkv * S * D, rng), v = randn(B * Hkv * S * D, rng);
    scatterHeads(q, qb, L.q, B, H, T, D);
    scatterHeads(k, kb, L.k, B, Hkv, S, D);
    scatterHeads(v, vb, L.v, B, Hkv, S, D);
    const dense: AttentionDims = { ...d, layout: undefined };

    const outD = new Float32Array(q.length), lseD = new Float32Array(B * H * T);
    backend.attention(q, k, v, outD, lseD, dense);
    const outB = fill(bufLen.out), lseL = new Float32Array(B * H * T);
    backend.attention(qb, kb, vb, outB, lseL, d);
    assert.deepEqual(gatherHeads(outB, L.out, B, H, T, D), outD, `${label}: out`);
    assert.deepEqual(lseL, lseD, `${label}: lse`);
    const outMask = fill(bufLen.out);
    scatterHeads(new Float32Array(q.length), outMask, L.out, B, H, T, D);
    outB.forEach((x, i) => { if (outMask[i] === SENTINEL) assert.equal(x, SENTINEL, `${label}: out[${i}] outside the layout was written`); });

    const gOut = randn(q.length, rng);
    const gOutB = fill(bufLen.out);
    scatterHeads(gOut, gOutB, L.out, B, H, T, D);
    const want = [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(k.length)];
    backend.attentionBackward(q, k, v, outD, lseD, gOut, want[0], want[1], want[2], dense);
    const gqb = fill(bufLen.qkv), gkb = shared ? gqb : fill(bufLen.qkv), gvb = shared ? gqb : fill(bufLen.qkv);
    backend.attentionBackward(qb, kb, vb, outB, lseL, gOutB, gqb, gkb, gvb, d);
    assert.deepEqual(gatherHeads(gqb, L.q, B, H, T, D), want[0], `${label}: gq`);
    assert.deepEqual(gatherHeads(gkb, L.k, B, Hkv, S, D), want[1], `${label}: gk`);
    assert.deepEqual(gatherHeads(gvb, L.v, B, Hkv, S, D), want[2], `${label}: gv`);
    if (shared) {
      // the three regions cover the packed buffer exactly: nothing may be left unwritten
      assert.ok(gqb.every((x) => x !== SENTINEL), `${label}: packed gradient has unwritten elements`);
    } else {
      const mask = fill(bufLen.qkv);
      scatterHeads(new Float32Array(q.length), mask, L.q, B, H, T, D);
      gqb.forEach((x, i) => { if (mask[i] === SENTINEL) assert.equal(x, SENTINEL, `${label}: gq[${i}] outside the layout was written`); });
    }
  }
}

describe('attention layouts [ref]', () => {
  test('packed and padded layouts equal the dense computation exactly, nothing outside written', () => check(refBackend));
});
forEachNativeIsa((nb, use) => {
  test('attention layouts: packed and padded equal the dense computation exactly, nothing outside written', () => {
    use();
    check(nb);
  });
  test('attention layout validation: a layout reaching past its buffer is a RangeError', () => {
    use();
    const d = packedAttentionDims([1, 4, 12], 2, 1, true, 0.5);
    const qkv = new Float32Array(47), out = new Float32Array(16), lse = new Float32Array(8);
    assert.throws(() => nb.attention(qkv, qkv, qkv, out, lse, d), /smaller than its layout/);
    assert.throws(() => nb.attention(new Float32Array(48), qkv, qkv, new Float32Array(15), lse, d), /smaller than its layout/);
  });
});
