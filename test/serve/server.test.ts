/**
 * `lmdistill serve` over real loopback sockets: every endpoint, logprob shapes and values (echo logprobs
 * equal LocalTeacher's log-softmax), sampling semantics (greedy = generate(), seeds, n, list prompts,
 * stop sequences, context limit), SSE streaming, every limit and error (status + OpenAI error JSON)
 * and the official `openai` client. Auth, the queue, faults and the CLI process: server-faults.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { loadModelAndTokenizer } from '../../src/cli/model-folder.js';
import { generate } from '../../src/models/generate.js';
import { CHAT_STOP, renderChat } from '../../src/serve/chat-template.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import type { ServeEvent } from '../../src/serve/app.js';
import { LocalTeacher } from '../../src/teachers/local.js';
import { tokenToBytes } from '../../src/tokenizer/bytes.js';
import { rowLogSumExp } from '../helpers/fixtures.js';
import { apiError, englishText, post, readSse, TINY_CTX, writeTinyModelFolder } from './helpers.js';

const dir = writeTinyModelFolder();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const { model, tokenizer } = loadModelAndTokenizer(dir);
const reference = new LocalTeacher(loadModelAndTokenizer(dir).model); // separate weights object: ground truth
const V = model.vocabSize;

/** log-softmax rows [T, V] of the reference model for one sequence (float64 normalisation). */
function refLogprobs(ids: number[]): Float64Array[] {
  const logits = reference.logitsSync({ input: Int32Array.from(ids), batchSize: 1, seqLen: ids.length });
  return ids.map((_, t) => {
    const row = logits.subarray(t * V, (t + 1) * V);
    const lse = rowLogSumExp(row);
    return Float64Array.from(row, (x) => x - lse);
  });
}

/** Top-k ids of a logprob row (descending, ties by id). */
function topIds(row: Float64Array, k: number): number[] {
  return Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
}

/** Ids of a text prefix of English, `n` tokens long. */
function englishIds(n: number, from = 0): number[] {
  const ids = tokenizer.encode(englishText(4000).slice(from));
  assert.ok(ids.length >= n);
  return ids.slice(0, n);
}

const limits = { maxTokens: 64, maxN: 4, maxLogprobs: 10, maxPrompts: 4, maxChoices: 8, maxStop: 2, maxBodyBytes: 16 * 1024 };

describe('lmdistill serve (in process)', () => {
  let server: RunningServer;
  let url: string;
  const events: ServeEvent[] = [];
  before(async () => {
    server = await startServer(model, tokenizer, { modelName: 'tiny', port: 0, ...limits }, (e) => events.push(e));
    url = server.url;
  });
  after(() => server.close());

  test('binds loopback; GET /health, /v1/models, /v1/models/{id}', async () => {
    assert.equal(server.host, '127.0.0.1');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.deepEqual(await (await fetch(url.replace('/v1', '/health'))).json(), { status: 'ok' });
    const list = await (await fetch(`${url}/models`)).json();
    assert.equal(list.object, 'list');
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0].id, 'tiny');
    assert.equal(list.data[0].object, 'model');
    assert.equal(list.data[0].max_model_len, TINY_CTX);
    const one = await (await fetch(`${url}/models/tiny`)).json();
    assert.equal(one.id, 'tiny');
    const missing = await fetch(`${url}/models/gpt-4`);
    apiError({ status: missing.status, json: await missing.json(), text: '' }, 404, 'model', 'model_not_found');
  });

  test('echo + logprobs on token-id prompts equal the reference log-softmax at every position', async () => {
    const ids = englishIds(30);
    const k = 5;
    const r = await post(`${url}/completions`, { model: 'tiny', prompt: ids, echo: true, max_tokens: 1, logprobs: k, temperature: 0, return_tokens_as_token_ids: true });
    assert.equal(r.status, 200, r.text);
    const ref = refLogprobs(ids);
    const c = r.json.choices[0];
    const lp = c.logprobs;
    const T = ids.length;
    for (const key of ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset']) assert.equal(lp[key].length, T + 1, key);
    assert.equal(lp.token_logprobs[0], null);
    assert.equal(lp.top_logprobs[0], null);
    for (let t = 0; t < T; t++) {
      if (t > 0) {
        assert.equal(lp.tokens[t], `token_id:${ids[t]}`);
        assert.ok(Math.abs(lp.token_logprobs[t] - ref[t - 1]![ids[t]!]!) < 1e-4, `token logprob at ${t}`);
      }
      // entry t+1 holds the distribution after ids[t]: the top k (plus the chosen token when outside them)
      const dict: Record<string, number> = lp.top_logprobs[t + 1];
      const want = topIds(ref[t]!, k);
      for (const id of want) {
        assert.ok(`token_id:${id}` in dict, `position ${t}: top id ${id} missing from ${JSON.stringify(dict)}`);
        assert.ok(Math.abs(dict[`token_id:${id}`]! - ref[t]![id]!) < 1e-4);
      }
      assert.ok(Object.keys(dict).length <= k + 1);
    }
    // the generated token is the argmax of the last position (temperature 0)
    assert.equal(lp.tokens[T], `token_id:${topIds(ref[T - 1]!, 1)[0]}`);
    assert.equal(c.text, tokenizer.decode([...ids, topIds(ref[T - 1]!, 1)[0]!]));
    // offsets: each token starts where the decoded prefix ends (all ASCII here)
    for (let t = 0; t <= T; t++) assert.equal(lp.text_offset[t], tokenizer.decode(ids.slice(0, t)).length);
    assert.deepEqual(r.json.usage, { prompt_tokens: T, completion_tokens: 1, total_tokens: T + 1 });
    assert.equal(r.json.object, 'text_completion');
    assert.match(r.json.id, /^cmpl-/);
    assert.equal(r.json.model, 'tiny');
    assert.equal(c.finish_reason, 'length');
  });

  test('token strings without token ids: text or bytes:\\xNN, each mapping back to its id; logprobs 0 → only the chosen token', async () => {
    const prompt = 'Call me Ishmael. Some years ago — never mind how long precisely';
    const r = await post(`${url}/completions`, { prompt, echo: true, max_tokens: 3, logprobs: 0, temperature: 0 });
    assert.equal(r.status, 200, r.text);
    const lp = r.json.choices[0].logprobs;
    const ids = tokenizer.encode(prompt);
    assert.equal(lp.tokens.length, ids.length + 3);
    ids.forEach((id, t) => {
      const s: string = lp.tokens[t];
      const m = /^bytes:((?:\\x[0-9a-f]{2})+)$/.exec(s);
      const bytes = m ? Buffer.from(m[1]!.split('\\x').slice(1).map((h) => parseInt(h, 16))) : Buffer.from(s, 'utf8');
      assert.deepEqual(bytes, Buffer.from(tokenToBytes(tokenizer.idToToken(id)!)), `token ${t}: ${JSON.stringify(s)}`);
      if (t > 0) assert.equal(Object.keys(lp.top_logprobs[t]).length, 1, 'logprobs 0: only the chosen token');
    });
    assert.ok(r.json.choices[0].text.startsWith(prompt));
  });

  test('greedy (temperature 0) equals generate(); seeds reproduce; n and list prompts give indexed choices', async () => {
    const ids = englishIds(10, 100);
    const want = generate(reference.model, ids, { maxNewTokens: 8, temperature: 0, eosId: tokenizer.eosId });
    const r = await post(`${url}/completions`, { prompt: ids, max_tokens: 8, temperature: 0, logprobs: 0, return_tokens_as_token_ids: true });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.choices[0].logprobs.tokens, want.map((id) => `token_id:${id}`));
    assert.equal(r.json.choices[0].text, tokenizer.decode(want));

    const sampled = { prompt: ids, max_tokens: 12, temperature: 1, top_p: 0.9, top_k: 40, seed: 1234, n: 3 };
    const [a, b] = await Promise.all([post(`${url}/completions`, sampled), post(`${url}/completions`, sampled)]);
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.json.choices.map((c: any) => c.index), [0, 1, 2]);
    assert.deepEqual(a.json.choices.map((c: any) => c.text), b.json.choices.map((c: any) => c.text), 'same seed → same samples');
    assert.equal(new Set(a.json.choices.map((c: any) => c.text)).size > 1, true, 'n choices differ');

    const ids2 = englishIds(6, 300);
    const want2 = generate(reference.model, ids2, { maxNewTokens: 5, temperature: 0, eosId: tokenizer.eosId });
    const want1 = generate(reference.model, ids, { maxNewTokens: 5, temperature: 0, eosId: tokenizer.eosId });
    const list = await post(`${url}/completions`, { prompt: [ids, ids2], max_tokens: 5, temperature: 0, n: 2 });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.choices.map((c: any) => c.index), [0, 1, 2, 3]);
    assert.deepEqual(list.json.choices.map((c: any) => c.text), [tokenizer.decode(want1), tokenizer.decode(want1), tokenizer.decode(want2), tokenizer.decode(want2)]);
    assert.equal(list.json.usage.prompt_tokens, ids.length + ids2.length);
    assert.equal(list.json.usage.completion_tokens, 4 * 5);

    const strings = await post(`${url}/completions`, { prompt: [tokenizer.decode(ids), tokenizer.decode(ids2)], max_tokens: 5, temperature: 0 });
    assert.deepEqual(strings.json.choices.map((c: any) => c.text), [tokenizer.decode(want1), tokenizer.decode(want2)]);
  });

  test('max_tokens 0 with echo scores the prompt only; the context holds prompt + max_tokens − 1', async () => {
    const ids = englishIds(12);
    const r = await post(`${url}/completions`, { prompt: ids, echo: true, max_tokens: 0, logprobs: 2 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].text, tokenizer.decode(ids));
    assert.equal(r.json.choices[0].logprobs.tokens.length, ids.length);
    assert.equal(r.json.usage.completion_tokens, 0);

    const full = englishIds(TINY_CTX);
    const one = await post(`${url}/completions`, { prompt: full, echo: true, max_tokens: 1, logprobs: 1 });
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.choices[0].logprobs.tokens.length, TINY_CTX + 1);
    apiError(await post(`${url}/completions`, { prompt: full, max_tokens: 2 }), 400, 'max_tokens', 'context_length_exceeded');
    apiError(await post(`${url}/completions`, { prompt: englishIds(TINY_CTX + 1), max_tokens: 1 }), 400, 'prompt', 'context_length_exceeded');
    const budget = await post(`${url}/completions`, { prompt: englishIds(TINY_CTX - 5), max_tokens: 6, temperature: 0 });
    assert.equal(budget.status, 200, budget.text);
    assert.equal(budget.json.usage.completion_tokens, 6);
  });

  test('stop sequences end the text before the stop (finish_reason "stop"), streamed or not', async () => {
    const ids = englishIds(8, 50);
    const base = await post(`${url}/completions`, { prompt: ids, max_tokens: 30, temperature: 0 });
    const text: string = base.json.choices[0].text;
    assert.ok(text.length >= 8, `greedy text too short to cut: ${JSON.stringify(text)}`);
    const stop = text.slice(4, 6);
    const cut = text.indexOf(stop);
    const r = await post(`${url}/completions`, { prompt: ids, max_tokens: 30, temperature: 0, stop: [stop, '\u0000never'] });
    assert.equal(r.json.choices[0].text, text.slice(0, cut));
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    const res = await fetch(`${url}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: ids, max_tokens: 30, temperature: 0, stop, stream: true }) });
    const events = await readSse(res);
    const chunks = events.slice(0, -1) as any[];
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), text.slice(0, cut));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  });

  test('streaming completions: data: chunks ending in [DONE], same text and logprobs as without streaming, usage chunk', async () => {
    const ids = englishIds(10, 200);
    const body = { prompt: ids, max_tokens: 10, temperature: 0, logprobs: 3, echo: true, return_tokens_as_token_ids: true };
    const whole = await post(`${url}/completions`, body);
    const res = await fetch(`${url}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const raw = await res.clone().text();
    assert.ok(raw.endsWith('data: [DONE]\n\n'), raw.slice(-100));
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1) as any[];
    const usageChunk = chunks.pop();
    assert.deepEqual(usageChunk.choices, []);
    assert.deepEqual(usageChunk.usage, whole.json.usage);
    for (const c of chunks) {
      assert.equal(c.object, 'text_completion');
      assert.equal(c.id, chunks[0].id);
    }
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), whole.json.choices[0].text);
    const tokens = chunks.flatMap((c) => c.choices[0].logprobs?.tokens ?? []);
    const lps = chunks.flatMap((c) => c.choices[0].logprobs?.token_logprobs ?? []);
    assert.deepEqual(tokens, whole.json.choices[0].logprobs.tokens);
    assert.deepEqual(lps, whole.json.choices[0].logprobs.token_logprobs);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  });

  test('chat: template, logprobs with top_logprobs, streaming deltas', async () => {
    const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: [{ type: 'text', text: 'Tell me about whales' }] }];
    const r = await post(`${url}/chat/completions`, { model: 'tiny', messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'chat.completion');
    const c = r.json.choices[0];
    assert.equal(c.message.role, 'assistant');
    // the same prompt through /completions (template + chat stops) gives the same greedy reply
    const prompt = renderChat(messages as any);
    assert.equal(prompt, 'System: You are terse.\n\nUser: Tell me about whales\n\nAssistant:');
    const plain = await post(`${url}/completions`, { prompt, max_tokens: 12, temperature: 0, stop: CHAT_STOP.slice(0, 2) });
    assert.equal(c.message.content, plain.json.choices[0].text.trimStart());
    assert.equal(c.logprobs.content.length, r.json.usage.completion_tokens);
    for (const e of c.logprobs.content) {
      assert.equal(e.top_logprobs.length, 3);
      assert.deepEqual(Object.keys(e).sort(), ['bytes', 'logprob', 'token', 'top_logprobs']);
      assert.ok(Array.isArray(e.bytes));
      assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
      assert.equal(e.token, e.top_logprobs[0].token, 'greedy picks the top token');
    }
    assert.equal(r.json.usage.prompt_tokens, tokenizer.encode(prompt).length);

    const res = await fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, max_tokens: 12, temperature: 0, stream: true }) });
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1) as any[];
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.equal(chunks.map((k) => k.choices[0].delta.content ?? '').join(''), c.message.content);
    assert.equal(chunks.at(-1).choices[0].finish_reason, c.finish_reason);
  });

  test('invalid requests → 400 invalid_request_error naming the parameter', async () => {
    const C = `${url}/completions`, H = `${url}/chat/completions`;
    const cases: [string, unknown, string | null][] = [
      [C, '{"prompt": ', null],
      [C, '[1, 2]', null],
      [C, { max_tokens: 3 }, 'prompt'],
      [C, { prompt: 'x', max_token: 3 }, 'max_token'],
      [C, { prompt: 'x', temperature: 3 }, 'temperature'],
      [C, { prompt: 'x', top_p: 0 }, 'top_p'],
      [C, { prompt: 'x', logprobs: limits.maxLogprobs + 1 }, 'logprobs'],
      [C, { prompt: 'x', max_tokens: limits.maxTokens + 1 }, 'max_tokens'],
      [C, { prompt: 'x', n: limits.maxN + 1 }, 'n'],
      [C, { prompt: ['a', 'b', 'c'], n: 3 }, 'n'],
      [C, { prompt: ['a', 'b', 'c', 'd', 'e'] }, 'prompt'],
      [C, { prompt: 'x', stop: ['a', 'b', 'c'] }, 'stop'],
      [C, { prompt: 'x', stop: '' }, 'stop'],
      [C, { prompt: 'x', best_of: 2 }, 'best_of'],
      [C, { prompt: 'x', presence_penalty: 0.5 }, 'presence_penalty'],
      [C, { prompt: '' }, 'prompt'],
      [C, { prompt: [1, V + 3] }, 'prompt'],
      [C, { prompt: [[1, 2], [3, -1]] }, 'prompt[1][1]'],
      [C, { prompt: [[1, 2], [3, V]] }, 'prompt[1]'],
      [C, { prompt: 'x', stream: 'yes' }, 'stream'],
      [H, { messages: [] }, 'messages'],
      [H, { messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
      [H, { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 'top_logprobs'],
      [H, { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: limits.maxLogprobs + 1 }, 'top_logprobs'],
      [H, { messages: [{ role: 'user', content: 'x' }], max_completion_tokens: limits.maxTokens + 1 }, 'max_completion_tokens'],
      [H, { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, 'tools'],
    ];
    for (const [u, body, param] of cases) {
      const r = await post(u, body);
      const e = apiError(r, 400, param);
      assert.equal(e.type, 'invalid_request_error', r.text);
    }
  });

  test('unknown model → 404 model_not_found; unknown route → 404; wrong method → 405; oversized body → 413', async () => {
    apiError(await post(`${url}/completions`, { model: 'gpt-4', prompt: 'x' }), 404, 'model', 'model_not_found');
    apiError(await post(`${url}/chat/completions`, { model: 'gpt-4', messages: [{ role: 'user', content: 'x' }] }), 404, 'model', 'model_not_found');
    apiError(await post(`${url}/embeddings`, { input: 'x' }), 404, null, 'unknown_url');
    const get = await fetch(`${url}/completions`);
    apiError({ status: get.status, json: await get.json(), text: '' }, 405, null, 'method_not_allowed');
    const big = { prompt: 'x'.repeat(limits.maxBodyBytes + 1) };
    apiError(await post(`${url}/completions`, big), 413, null, 'request_too_large');
    // without Content-Length (chunked upload) the limit holds too
    const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(`${url}/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      const s = JSON.stringify(big);
      for (let i = 0; i < s.length; i += 4096) req.write(s.slice(i, i + 4096));
      req.end();
    });
    apiError({ ...chunked, json: JSON.parse(chunked.text) }, 413, null, 'request_too_large');
  });

  test('the official openai client: completions, chat, streaming, typed errors', async () => {
    const client = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
    const ids = englishIds(8);
    const comp = await client.completions.create({ model: 'tiny', prompt: ids, max_tokens: 4, logprobs: 2, echo: true, temperature: 0 });
    assert.equal(comp.choices[0]!.logprobs!.tokens!.length, ids.length + 4);
    assert.equal(comp.usage!.completion_tokens, 4);
    const chat = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hello' }], max_completion_tokens: 5, logprobs: true, top_logprobs: 2, seed: 3 });
    assert.equal(chat.choices[0]!.message.role, 'assistant');
    assert.equal(chat.choices[0]!.logprobs!.content!.length, chat.usage!.completion_tokens);
    let text = '';
    for await (const chunk of await client.completions.create({ model: 'tiny', prompt: 'The whale', max_tokens: 6, temperature: 0, stream: true })) text += chunk.choices[0]?.text ?? '';
    const whole = await client.completions.create({ model: 'tiny', prompt: 'The whale', max_tokens: 6, temperature: 0 });
    assert.equal(text, whole.choices[0]!.text);
    let reply = '';
    let finish: string | null | undefined;
    for await (const chunk of await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0, stream: true })) {
      reply += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(finish === 'length' || finish === 'stop');
    const nonStream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
    assert.equal(reply, nonStream.choices[0]!.message.content);
    await assert.rejects(client.completions.create({ model: 'nope', prompt: 'x' }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', logprobs: 99 }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'logprobs');
  });

  test('every request was reported to onEvent; no internal errors', () => {
    assert.ok(events.filter((e) => e.type === 'request').length > 30);
    assert.deepEqual(events.filter((e) => e.type === 'error'), []);
  });
});
