/**
 * Times Trainer.stepOn of a small GPT-2 (d=256, 4 layers, 4 heads, vocab 512, seq 128, batch 8) on
 * the native backend: wall-clock tokens/s and process CPU time per step (the machine may be shared,
 * so CPU time is the steadier number).
 * Usage: node --import tsx bench/native-step.ts [steps] [gpt2|llama] [native|before]
 * `before` rebuilds the backend as it was before the native fused kernels: norms and AdamW from the
 * reference backend, attention in TypeScript around the native GEMM (everything else native).
 */
import { nativeBackend, nativeInfo } from '../src/backend/native.js';
import { createModel } from '../src/models/registry.js';
import { AdamW } from '../src/optim/adamw.js';
import { refBackend } from '../src/backend/ref.js';
import { attentionBackward, attentionForward } from '../src/backend/ref-fused.js';
import { setBackend } from '../src/tensor/tensor.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';

if (!nativeBackend) throw new Error(`native backend unavailable: ${nativeInfo().reason}`);
const steps = Number(process.argv[2] ?? 5);
const llama = process.argv[3] === 'llama';
const before = process.argv[4] === 'before';
const nb = nativeBackend;
setBackend(before
  ? {
    ...nb,
    normForward: refBackend.normForward, normBackward: refBackend.normBackward, adamw: refBackend.adamw,
    attention: (q, k, v, out, lse, d) => attentionForward(q, k, v, out, lse, d, nb.matmul),
    attentionBackward: (q, k, v, out, lse, g, gq, gk, gv, d) => attentionBackward(q, k, v, out, lse, g, gq, gk, gv, d, nb.matmul),
  }
  : nb);
const V = 512, T = 128, B = 8;
const model = createModel(llama
  ? { model_type: 'llama', vocab_size: V, hidden_size: 256, intermediate_size: 704, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: T }
  : { model_type: 'gpt2', vocab_size: V, n_positions: T, n_embd: 256, n_layer: 4, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 });
const trainer = new Trainer({
  model, optimizer: new AdamW(model.namedParameters()), gradClip: 1, gradAccumSteps: 1,
  schedule: { kind: 'constant', peakLr: 1e-3, warmupSteps: 0, totalSteps: 10_000, minLr: 0 },
});
const rng = new Rng(1);
const batch = () => {
  const input = Int32Array.from({ length: B * T }, () => rng.int(V));
  const target = Int32Array.from({ length: B * T }, () => rng.int(V));
  return { input, target, batchSize: B, seqLen: T };
};
trainer.stepOn([batch()]); // warm-up
const walls: number[] = [], cpus: number[] = [];
let loss = 0;
for (let i = 0; i < steps; i++) {
  const b = batch();
  const c0 = process.cpuUsage(), t0 = performance.now();
  loss = trainer.stepOn([b]).loss;
  const t1 = performance.now(), c1 = process.cpuUsage(c0);
  walls.push(t1 - t0);
  cpus.push((c1.user + c1.system) / 1000);
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const info = nativeInfo();
console.log(JSON.stringify({
  model: llama ? 'llama' : 'gpt2', backend: before ? 'before' : 'native', isa: info.isa, threads: info.threads, steps,
  wallMsMedian: +med(walls).toFixed(1), wallMsMin: +Math.min(...walls).toFixed(1), cpuMsMedian: +med(cpus).toFixed(1),
  tokensPerSec: Math.round((B * T) / (med(walls) / 1000)), loss: +loss.toFixed(4),
}));
