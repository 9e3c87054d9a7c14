/**
 * `lmdistill serve` under stress and faults, over real loopback sockets: auth, the concurrency queue
 * (429, waiting, a disconnecting client frees its slot), internal failures, a padded vocabulary, and
 * the CLI process (start, key from env, SIGTERM). Endpoints and values: server.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';
import { loadModelAndTokenizer } from '../../src/cli/model-folder.js';
import { UserError } from '../../src/errors.js';
import { gpt2ConfigSchema } from '../../src/models/config.js';
import type { CausalLM, ForwardOptions, ForwardOutput } from '../../src/models/base.js';
import { GPT2LMHeadModel } from '../../src/models/gpt2.js';
import { startServer } from '../../src/serve/server.js';
import type { BpeTokenizer } from '../../src/tokenizer/index.js';
import { apiError, post, readSse, spawnServe, TINY_CTX, writeTinyModelFolder } from './helpers.js';

const dir = writeTinyModelFolder();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const { model, tokenizer } = loadModelAndTokenizer(dir);
const V = model.vocabSize;

describe('auth, queue and faults', () => {
  test('API key: none or wrong → 401 invalid_api_key; right → 200; /health is open', async () => {
    const server = await startServer(model, tokenizer, { modelName: 'tiny', port: 0, apiKey: 's3cret' });
    try {
      const u = server.url;
      apiError(await post(`${u}/completions`, { prompt: 'x', max_tokens: 1 }), 401, null, 'invalid_api_key');
      apiError(await post(`${u}/completions`, { prompt: 'x', max_tokens: 1 }, { authorization: 'Bearer wrong' }), 401, null, 'invalid_api_key');
      apiError(await post(`${u}/completions`, { prompt: 'x', max_tokens: 1 }, { authorization: 's3cret' }), 401, null, 'invalid_api_key');
      const models = await fetch(`${u}/models`);
      assert.equal(models.status, 401);
      assert.equal((await post(`${u}/completions`, { prompt: 'x', max_tokens: 1 }, { authorization: 'Bearer s3cret' })).status, 200);
      assert.equal((await fetch(u.replace('/v1', '/health'))).status, 200);
      const client = new OpenAI({ baseURL: u, apiKey: 'wrong', maxRetries: 0 });
      await assert.rejects(client.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    } finally {
      await server.close();
    }
  });

  test('startServer: a port in use or an invalid option is a UserError naming it', async () => {
    const first = await startServer(model, tokenizer, { modelName: 'tiny', port: 0 });
    try {
      await assert.rejects(startServer(model, tokenizer, { modelName: 'tiny', port: first.port }), (e: unknown) => e instanceof UserError && /port is in use/.test(e.message) && e.message.includes(String(first.port)));
      await assert.rejects(startServer(model, tokenizer, { modelName: 'tiny', port: 0, maxConcurrency: 0 }), (e: unknown) => e instanceof UserError && /maxConcurrency/.test(e.message));
      await assert.rejects(startServer(model, tokenizer, { modelName: 'two words', port: 0 }), (e: unknown) => e instanceof UserError && /modelName/.test(e.message));
    } finally {
      await first.close();
    }
  });

  test('concurrency: over the queue → 429; queued requests wait; a client that disconnects frees its slot; health stays responsive', async () => {
    const server = await startServer(model, tokenizer, { modelName: 'tiny', port: 0, maxConcurrency: 1, maxQueue: 1, maxN: 16, maxChoices: 64 });
    try {
      const u = server.url;
      // A long streaming request (4 prompts × 16 choices × ~47 tokens) occupies the only slot.
      const ac = new AbortController();
      const long = await fetch(`${u}/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
        body: JSON.stringify({ prompt: ['a', 'b', 'c', 'd'], n: 16, max_tokens: 100, stream: true, logprobs: 5 }),
      });
      const reader = long.body!.getReader();
      await reader.read(); // generation has started
      assert.deepEqual(server.stats(), { running: 1, waiting: 0 });
      const queued = post(`${u}/completions`, { prompt: 'queued', max_tokens: 2 });
      while (server.stats().waiting < 1) await new Promise((r) => setTimeout(r, 5));
      const rejected = await post(`${u}/completions`, { prompt: 'x', max_tokens: 1 });
      const e = apiError(rejected, 429, null, 'rate_limit_exceeded');
      assert.equal(e.type, 'rate_limit_error');
      const t0 = performance.now();
      assert.equal((await fetch(u.replace('/v1', '/health'))).status, 200);
      assert.ok(performance.now() - t0 < 500, `health took ${performance.now() - t0} ms while generating`);
      ac.abort(); // the client goes away: its generation stops and the slot passes to the queued request
      await reader.cancel().catch(() => {});
      const q = await queued;
      assert.equal(q.status, 200, q.text);
      assert.deepEqual(server.stats(), { running: 0, waiting: 0 });
    } finally {
      await server.close();
    }
  });

  test('an internal failure → 500 server_error JSON (or an error event mid-stream); the server keeps serving', async () => {
    // Fault injection: a real GPT-2 whose forward throws after `failAfter` calls.
    class FailingModel extends GPT2LMHeadModel {
      calls = 0;
      failAfter = Infinity;
      override forward(ids: Int32Array, b: number, t: number, o?: ForwardOptions): ForwardOutput {
        if (++this.calls > this.failAfter) throw new Error('injected fault');
        return super.forward(ids, b, t, o);
      }
    }
    const failing = new FailingModel(gpt2ConfigSchema.parse({ model_type: 'gpt2', vocab_size: V, n_positions: TINY_CTX, n_embd: 8, n_layer: 1, n_head: 2 }), 3);
    const errors: unknown[] = [];
    const server = await startServer(failing as CausalLM, tokenizer as BpeTokenizer, { modelName: 'tiny', port: 0 }, (e) => { if (e.type === 'error') errors.push(e.error); });
    try {
      const u = server.url;
      failing.failAfter = 0;
      const e = apiError(await post(`${u}/completions`, { prompt: 'x', max_tokens: 3 }), 500, null, null);
      assert.equal(e.type, 'server_error');
      assert.match(e.message, /injected fault/);
      failing.calls = 0;
      failing.failAfter = 2; // prefill + one step succeed, the next forward fails mid-stream
      const res = await fetch(`${u}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', max_tokens: 5, stream: true }) });
      assert.equal(res.status, 200);
      const events = await readSse(res) as any[];
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(events.at(-2).error.type, 'server_error');
      assert.ok(events.length >= 4, JSON.stringify(events));
      failing.failAfter = Infinity;
      assert.equal((await post(`${u}/completions`, { prompt: 'x', max_tokens: 2 })).status, 200);
      assert.equal(errors.length, 2);
      assert.deepEqual(server.stats(), { running: 0, waiting: 0 });
    } finally {
      await server.close();
    }
  });
});

test('a padded vocabulary (model ids the tokenizer lacks): never sampled, reported as token_id:N', async () => {
  const padded = writeTinyModelFolder({ padVocab: 5, seed: 11 });
  const loaded = loadModelAndTokenizer(padded);
  const server = await startServer(loaded.model, loaded.tokenizer, { modelName: 'pad', port: 0, maxN: 8, maxLogprobs: 20 });
  try {
    const Vtok = loaded.tokenizer.vocabSize;
    assert.equal(loaded.model.vocabSize, Vtok + 5);
    // 8 × 100 draws at temperature 2 from a near-uniform 305-way distribution would hit the 5 padded ids
    // almost surely (1 − (300/305)^800 > 0.9999) if the sampler allowed them
    const r = await post(`${server.url}/completions`, { prompt: 'the', n: 8, max_tokens: 100, temperature: 2, seed: 5, logprobs: 20 });
    assert.equal(r.status, 200, r.text);
    let paddedInTop = 0;
    for (const c of r.json.choices) {
      for (const t of c.logprobs.tokens as string[]) assert.ok(!/^token_id:/.test(t), `sampled a padded id: ${t}`);
      for (const d of c.logprobs.top_logprobs as Record<string, number>[]) {
        for (const key of Object.keys(d)) {
          const m = /^token_id:(\d+)$/.exec(key);
          if (m) { assert.ok(Number(m[1]) >= Vtok); paddedInTop++; }
        }
      }
    }
    assert.ok(paddedInTop > 0, 'padded ids appear among the top logprobs, as token_id:N');
  } finally {
    await server.close();
    fs.rmSync(padded, { recursive: true, force: true });
  }
});

test('lmdistill serve (CLI process): URL on stderr, key from LMDISTILL_API_KEY, graceful SIGTERM', async () => {
  const s = await spawnServe(['--model', dir, '--port', '0', '--model-name', 'tiny-cli', '--max-logprobs', '7'], { LMDISTILL_API_KEY: 'envkey' });
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.match(s.stderr(), /API key required/);
    assert.equal((await fetch(`${s.url}/models`)).status, 401);
    const list = await (await fetch(`${s.url}/models`, { headers: { authorization: 'Bearer envkey' } })).json();
    assert.equal(list.data[0].id, 'tiny-cli');
    apiError(await post(`${s.url}/completions`, { prompt: 'x', logprobs: 8 }, { authorization: 'Bearer envkey' }), 400, 'logprobs');
    s.child.kill('SIGTERM');
    const { code } = await s.exited;
    assert.equal(code, 0, s.stderr());
    assert.match(s.stderr(), /stopped/);
  } finally {
    s.child.kill('SIGKILL');
  }
});
