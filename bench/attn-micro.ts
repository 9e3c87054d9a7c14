/**
 * Attention kernel microbenchmark on the kd-small shapes (teacher B=8 H=6 T=128 D=64, student H=4),
 * packed-qkv layout as GPT-2 uses it: forward and backward, CPU ms per call (steady on a shared machine)
 * and wall ms. Usage: node --import tsx bench/attn-micro.ts [reps]
 */
import { nativeBackend } from '../src/backend/native.js';
import { packedAttentionDims } from '../src/tensor/ops.js';
import { Rng } from '../src/util/rng.js';

const nb = nativeBackend;
if (!nb) throw new Error('native backend unavailable');
const reps = Number(process.argv[2] ?? 20);
const rng = new Rng(1);
for (const [B, H, T, D] of [[8, 6, 128, 64], [8, 4, 128, 64]]) {
  const d = packedAttentionDims([B, T, 3 * H * D], H, H, true, 1 / Math.sqrt(D));
  const qkv = Float32Array.from({ length: B * T * 3 * H * D }, () => rng.normal());
  const out = new Float32Array(B * T * H * D), lse = new Float32Array(B * H * T), g = Float32Array.from(out, () => rng.normal());
  const gqkv = new Float32Array(qkv.length);
  const time = (f: () => void) => {
    f();
    const c0 = process.cpuUsage(), t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    const c = process.cpuUsage(c0);
    return { cpu: (c.user + c.system) / 1e3 / reps, wall: (performance.now() - t0) / reps };
  };
  const fwd = time(() => nb.attention(qkv, qkv, qkv, out, lse, d));
  const bwd = time(() => nb.attentionBackward(qkv, qkv, qkv, out, lse, g, gqkv, gqkv, gqkv, d));
  const flops = 4 * B * H * T * T * D / 2; // causal: half of the [T, T] scores, two GEMMs
  console.log(JSON.stringify({ B, H, T, D, fwd_cpu_ms: +fwd.cpu.toFixed(2), fwd_wall_ms: +fwd.wall.toFixed(2), fwd_gflops_per_cpu: +(flops / fwd.cpu / 1e6).toFixed(1),
    bwd_cpu_ms: +bwd.cpu.toFixed(2), bwd_wall_ms: +bwd.wall.toFixed(2), bwd_gflops_per_cpu: +(2.5 * flops / bwd.cpu / 1e6).toFixed(1) }));
}
