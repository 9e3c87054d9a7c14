/**
 * The one interface every teacher source implements — an in-process model, an ONNX model, an
 * OpenAI-compatible server, or an on-disk top-k cache. Positions follow the student's batches: for
 * input ids [B, T], position (b, t) holds the teacher's distribution over the token that follows
 * input[b, t] (i.e. predicting target[b, t]).
 */

/** A batch of token sequences (row-major [B, T]) in the shared tokenizer's ids. */
export interface TeacherBatch {
  input: Int32Array;
  batchSize: number;
  seqLen: number;
}

/** Sparse teacher signal: the k most likely next tokens per position, sorted by descending logprob. */
export interface TopK {
  k: number;
  /** [B·T·k] token ids */
  ids: Int32Array;
  /** [B·T·k] natural-log probabilities (normalised over the full vocabulary by the teacher) */
  logprobs: Float32Array;
}

export interface Teacher {
  /** human-readable source, e.g. "local:runs/teacher/final" or "openai:http://127.0.0.1:8000/v1" */
  readonly name: string;
  /** the teacher's vocabulary size (ids must be shared with the student for logit KD) */
  readonly vocabSize: number;
  /** true when `logprobs()` (full distributions) is available; API and cache teachers are top-k only */
  readonly dense: boolean;
  /** top-k next-token log-probabilities at every position */
  topk(batch: TeacherBatch, k: number): Promise<TopK>;
  /** full next-token logits [B·T, V] at every position (only when `dense`) */
  logits(batch: TeacherBatch): Promise<Float32Array>;
  /** releases sockets, sessions, file handles */
  close(): Promise<void>;
}

/** Extracts the top-k (ids, logprobs) of each row of logits [N, V] (log-softmax computed in float64). */
export function topkFromLogits(logits: Float32Array, V: number, k: number): TopK {
  const N = logits.length / V;
  const kk = Math.min(k, V);
  const ids = new Int32Array(N * kk), logprobs = new Float32Array(N * kk);
  const idx = new Int32Array(V);
  for (let r = 0; r < N; r++) {
    const o = r * V;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) if (logits[o + j] > mx) mx = logits[o + j];
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[o + j] - mx);
    const lse = mx + Math.log(s);
    for (let j = 0; j < V; j++) idx[j] = j;
    // partial selection: k passes of max would be O(kV); sorting is fine for the small V·k here
    const row = Array.from(idx).sort((a, b) => logits[o + b] - logits[o + a] || a - b);
    for (let j = 0; j < kk; j++) {
      ids[r * kk + j] = row[j];
      logprobs[r * kk + j] = logits[o + row[j]] - lse;
    }
  }
  return { k: kk, ids, logprobs };
}
