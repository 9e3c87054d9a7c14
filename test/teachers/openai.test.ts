/**
 * OpenAITeacher against real servers on loopback: our `lmdistill serve` (in process, and as a child
 * process that is SIGKILLed mid-job and restarted), a strict proxy that rejects vLLM's
 * `return_tokens_as_token_ids`, and plain Node HTTP servers that hang or fail. LocalTeacher on the same
 * weights is the ground truth.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModelAndTokenizer } from '../../src/cli/model-folder.js';
import { UserError } from '../../src/errors.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { ResponseCache } from '../../src/teachers/http-cache.js';
import { LocalTeacher } from '../../src/teachers/local.js';
import { OpenAITeacher, type OpenAITeacherEvent } from '../../src/teachers/openai.js';
import type { TeacherBatch, TopK } from '../../src/teachers/teacher.js';
import { BpeTokenizer } from '../../src/tokenizer/index.js';
import { englishText, freePort, spawnServe, writeTinyModelFolder } from '../serve/helpers.js';

const dir = writeTinyModelFolder();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-openai-teacher-'));
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});
const { model, tokenizer } = loadModelAndTokenizer(dir);
const local = new LocalTeacher(loadModelAndTokenizer(dir).model);

/** B sequences of T tokens: consecutive slices of encoded English (all distinct). */
function batchOf(B: number, T: number, offset = 0): TeacherBatch {
  const ids = tokenizer.encode(englishText(20_000));
  const input = new Int32Array(B * T);
  for (let b = 0; b < B; b++) input.set(ids.slice(offset + b * T, offset + (b + 1) * T), b * T);
  return { input, batchSize: B, seqLen: T };
}

/** Ids equal; logprobs within 1e-4. */
function assertSameTopK(got: TopK, want: TopK): void {
  assert.equal(got.k, want.k);
  assert.equal(got.ids.length, want.ids.length);
  for (let i = 0; i < got.ids.length; i++) {
    assert.equal(got.ids[i], want.ids[i], `id at flat index ${i}`);
    assert.ok(Math.abs(got.logprobs[i]! - want.logprobs[i]!) < 1e-4, `logprob at ${i}: ${got.logprobs[i]} vs ${want.logprobs[i]}`);
  }
}

/** Files under `d` whose names mark an unfinished atomic write. */
function tempFiles(d: string): string[] {
  return fs.readdirSync(d, { recursive: true }).map(String).filter((f) => f.includes('.tmp-'));
}

/** A plain HTTP server on loopback; returns its /v1 URL, the number of requests it saw, and a closer. */
async function rawServer(handler: http.RequestListener): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = http.createServer((req, res) => { n++; handler(req, res); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    count: () => n,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('OpenAITeacher against lmdistill serve (in process)', () => {
  let server: RunningServer;
  let requests = 0;
  before(async () => {
    server = await startServer(model, tokenizer, { modelName: 'tiny', port: 0, maxLogprobs: 64, maxPrompts: 8 }, (e) => {
      if (e.type === 'request' && e.path === '/v1/completions') requests++;
    });
  });
  after(() => server.close());

  const batch = batchOf(5, 24);
  const k = 8;
  let want: TopK;
  before(async () => { want = await local.topk(batch, k); });

  for (const [promptsPerRequest, tokenIds, expectRequests] of [[1, 'always', 5], [2, 'never', 3], [8, 'auto', 1]] as const) {
    test(`same top-k as LocalTeacher: ${promptsPerRequest} prompt(s)/request, tokenIds ${tokenIds} → ${expectRequests} requests`, async () => {
      const teacher = new OpenAITeacher({ baseURL: server.url, tokenizer, model: 'tiny', promptsPerRequest, tokenIds, concurrency: 3 });
      const before = requests;
      assertSameTopK(await teacher.topk(batch, k), want);
      assert.equal(requests - before, expectRequests);
      assert.equal(teacher.dense, false);
      assert.equal(teacher.name, `openai:${server.url}`);
      await teacher.close();
    });
  }

  test('the model name defaults to the first one /v1/models lists', async () => {
    const small = batchOf(1, 4);
    const teacher = new OpenAITeacher({ baseURL: server.url, tokenizer });
    assertSameTopK(await teacher.topk(small, 3), await local.topk(small, 3));
  });

  test('request cache: a second run (new teacher, same directory) makes zero HTTP requests; one file per request', async () => {
    const cacheDir = path.join(work, 'cache-basic');
    const events: OpenAITeacherEvent[] = [];
    const first = new OpenAITeacher({ baseURL: server.url, tokenizer, model: 'tiny', cacheDir, promptsPerRequest: 2, onEvent: (e) => events.push(e) });
    const before1 = requests;
    assertSameTopK(await first.topk(batch, k), want);
    assert.equal(requests - before1, 3);
    const cache = new ResponseCache(cacheDir);
    assert.equal(cache.keys().length, 3);
    assert.deepEqual(tempFiles(cacheDir), []);

    const second = new OpenAITeacher({ baseURL: server.url, tokenizer, model: 'tiny', cacheDir, promptsPerRequest: 2, onEvent: (e) => events.push(e) });
    const before2 = requests;
    assertSameTopK(await second.topk(batch, k), want);
    assert.equal(requests - before2, 0, 'the second run must be served from the cache');
    assert.equal(events.filter((e) => e.type === 'response' && e.fromCache).length, 3);
    assert.equal(cache.keys().length, 3);
    // a different k is a different request
    await second.topk(batch, 4);
    assert.equal(requests - before2, 3);
    assert.equal(cache.keys().length, 6);
  });

  test('a token string that maps to no id of the shared tokenizer → UserError naming it', async () => {
    // A tokenizer with only the byte tokens: the server's merged tokens (e.g. " the") are not in it.
    const bytesOnly = BpeTokenizer.train([englishText(2000)], { vocabSize: 257, specialTokens: ['<|endoftext|>'] });
    const teacher = new OpenAITeacher({ baseURL: server.url, tokenizer: bytesOnly, model: 'tiny', tokenIds: 'never' });
    const input = Int32Array.from(Buffer.from(' the whale the sea'), (b) => bytesOnly.tokenToId(String.fromCharCode(b === 32 ? 0x120 : b))!);
    await assert.rejects(teacher.topk({ input, batchSize: 1, seqLen: input.length }, 50), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, /the token string ".+" \(sequence 0, position \d+\) is not a token of the shared tokenizer/);
      assert.ok(e.message.includes(server.url));
      return true;
    });
  });

  test('logits() is a clear UserError (API teachers are top-k only); 4xx is not retried and names the URL', async () => {
    const events: OpenAITeacherEvent[] = [];
    const teacher = new OpenAITeacher({ baseURL: server.url, tokenizer, model: 'tiny', concurrency: 2, onEvent: (e) => events.push(e) });
    await assert.rejects(teacher.logits(batch), (e: unknown) => e instanceof UserError && /top-k logprobs only/.test(e.message));
    await assert.rejects(teacher.topk(batch, 65), (e: unknown) => e instanceof UserError && e.message.includes(server.url) && /HTTP 400/.test(e.message) && /logprobs/.test(e.message));
    const sent = events.filter((e) => e.type === 'request');
    assert.ok(sent.length >= 1 && sent.length <= 2, `after the first 400 the batch's waiting requests are not sent (${sent.length} sent)`);
    assert.ok(sent.every((e) => e.type === 'request' && e.attempt === 0));
    assert.equal(events.filter((e) => e.type === 'retry').length, 0);

    const events2: OpenAITeacherEvent[] = [];
    const wrongModel = new OpenAITeacher({ baseURL: server.url, tokenizer, model: 'gpt-4', maxRetries: 5, onEvent: (e) => events2.push(e) });
    await assert.rejects(wrongModel.topk(batchOf(1, 4), 2), (e: unknown) => e instanceof UserError && /HTTP 404/.test(e.message) && /model/.test(e.message));
    assert.deepEqual(events2.map((e) => e.type), ['request']);
  });
});

test('429 from a full server queue is retried with backoff until it succeeds', async () => {
  const server = await startServer(model, tokenizer, { modelName: 'tiny', port: 0, maxConcurrency: 1, maxQueue: 0, maxN: 16, maxChoices: 64 });
  try {
    // a long streaming request holds the only slot until we drop it
    const ac = new AbortController();
    const long = await fetch(`${server.url}/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
      body: JSON.stringify({ prompt: ['a', 'b', 'c', 'd'], n: 16, max_tokens: 100, stream: true }),
    });
    await long.body!.getReader().read();
    const events: OpenAITeacherEvent[] = [];
    const teacher = new OpenAITeacher({
      baseURL: server.url, tokenizer, model: 'tiny', concurrency: 3, maxRetries: 30, retryBaseMs: 20, retryMaxMs: 100,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'retry' && events.filter((x) => x.type === 'retry').length === 6) ac.abort(); // free the slot
      },
    });
    const batch = batchOf(6, 32, 100);
    assertSameTopK(await teacher.topk(batch, 5), await local.topk(batch, 5));
    const retries = events.filter((e) => e.type === 'retry');
    assert.ok(retries.length >= 6, 'requests met a full queue');
    assert.ok(retries.every((e) => e.type === 'retry' && /HTTP 429/.test(e.reason)), JSON.stringify(retries.slice(0, 3)));
  } finally {
    await server.close();
  }
});

test('a server without return_tokens_as_token_ids support: tokenIds "auto" falls back to token strings', async () => {
  const server = await startServer(model, tokenizer, { modelName: 'tiny', port: 0 });
  // a strict front (as OpenAI's API): unknown fields are a 400 naming the param; everything else is proxied
  const strict = await rawServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', async () => {
      const parsed = JSON.parse(body || '{}');
      if ('return_tokens_as_token_ids' in parsed) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Unrecognized request argument supplied: return_tokens_as_token_ids', type: 'invalid_request_error', param: 'return_tokens_as_token_ids', code: null } }));
        return;
      }
      const up = await fetch(server.url + req.url!.replace(/^\/v1/, ''), { method: req.method, headers: { 'content-type': 'application/json' }, body: body || undefined });
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(await up.text());
    });
  });
  try {
    const teacher = new OpenAITeacher({ baseURL: strict.url, tokenizer, model: 'tiny', promptsPerRequest: 4 });
    const batch = batchOf(4, 16, 50);
    assertSameTopK(await teacher.topk(batch, 6), await local.topk(batch, 6));
    assert.equal(strict.count(), 2, 'one rejected request, then one without the field');
    await teacher.topk(batch, 6);
    assert.equal(strict.count(), 3, 'the fallback is remembered');
    const always = new OpenAITeacher({ baseURL: strict.url, tokenizer, model: 'tiny', tokenIds: 'always' });
    await assert.rejects(always.topk(batch, 6), (e: unknown) => e instanceof UserError && /HTTP 400/.test(e.message) && e.message.includes(strict.url));
  } finally {
    await strict.close();
    await server.close();
  }
});

describe('failures: timeouts, retry limits, unreachable servers → UserError naming the URL', () => {
  const batch = batchOf(1, 8);

  test('a server that never answers: per-request timeout, then retries, then a UserError', async () => {
    const hang = await rawServer(() => { /* never respond */ });
    try {
      const teacher = new OpenAITeacher({ baseURL: hang.url, tokenizer, model: 'tiny', timeoutMs: 200, maxRetries: 2, retryBaseMs: 10 });
      const t0 = performance.now();
      await assert.rejects(teacher.topk(batch, 3), (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.equal(e.message, `teacher ${hang.url}: POST /completions failed after 3 attempts: timed out after 200 ms`);
        return true;
      });
      assert.equal(hang.count(), 3);
      assert.ok(performance.now() - t0 < 3000);
    } finally {
      await hang.close();
    }
  });

  test('a server that keeps failing (503): retry limit reached, attempts counted, Retry-After honoured', async () => {
    const failing = await rawServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after-ms': '40' });
      res.end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error', param: null, code: null } }));
    });
    try {
      const events: OpenAITeacherEvent[] = [];
      const teacher = new OpenAITeacher({ baseURL: failing.url, tokenizer, model: 'tiny', maxRetries: 3, retryBaseMs: 1, onEvent: (e) => events.push(e) });
      await assert.rejects(teacher.topk(batch, 3), (e: unknown) => e instanceof UserError && e.message === `teacher ${failing.url}: POST /completions failed after 4 attempts: HTTP 503: overloaded`);
      assert.equal(failing.count(), 4);
      const delays = events.flatMap((e) => (e.type === 'retry' ? [e.delayMs] : []));
      assert.equal(delays.length, 3);
      assert.ok(delays.every((d) => d >= 40), `Retry-After ignored: ${delays}`);
    } finally {
      await failing.close();
    }
  });

  test('nothing listening: connection refused, retried, then a UserError', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const teacher = new OpenAITeacher({ baseURL: url, tokenizer, maxRetries: 2, retryBaseMs: 5 });
    await assert.rejects(teacher.topk(batch, 3), (e: unknown) => e instanceof UserError && e.message === `teacher ${url}: GET /models failed after 3 attempts: connection failed (ECONNREFUSED)`);
  });

  test('invalid options are a UserError naming the key', () => {
    assert.throws(() => new OpenAITeacher({ baseURL: 'not a url', tokenizer }), (e: unknown) => e instanceof UserError && /baseURL/.test(e.message));
    assert.throws(() => new OpenAITeacher({ baseURL: 'http://127.0.0.1:1/v1', tokenizer, concurency: 2 } as never), (e: unknown) => e instanceof UserError && /concurency/.test(e.message));
  });
});

test('the server dies mid-job (SIGKILL) and comes back on the same port: the job retries, completes, and the cache holds each record once', async () => {
  const port = await freePort();
  const cacheDir = path.join(work, 'cache-kill');
  const args = ['--model', dir, '--port', String(port), '--model-name', 'tiny', '--max-logprobs', '16'];
  let child = await spawnServe(args);
  const B = 16, T = 32, k = 6;
  const batch = batchOf(B, T, 200);
  const events: OpenAITeacherEvent[] = [];
  let responses = 0;
  let restarted: Promise<void> | undefined;
  const teacher = new OpenAITeacher({
    baseURL: child.url, tokenizer, model: 'tiny', cacheDir, concurrency: 2, maxRetries: 40, retryBaseMs: 50, retryMaxMs: 400,
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'response' && ++responses === 4) {
        child.child.kill('SIGKILL'); // mid-job: 12 sequences still to go, up to 2 in flight
        restarted = child.exited.then(async () => { child = await spawnServe(args); });
      }
    },
  });
  try {
    const got = await teacher.topk(batch, k);
    assertSameTopK(got, await local.topk(batch, k));
    await restarted;
    assert.ok(restarted, 'the server was killed during the job');
    assert.ok(events.some((e) => e.type === 'retry' && /connection failed|socket|HTTP 5/.test(e.reason)), 'requests failed while the server was down');
    const cache = new ResponseCache(cacheDir);
    assert.equal(cache.keys().length, B, 'one record per sequence: none lost, none duplicated');
    assert.deepEqual(tempFiles(cacheDir), []);
    assert.equal(events.filter((e) => e.type === 'response' && !e.fromCache).length, B);

    // a restarted job (new teacher, same cache) asks the server nothing
    const replay: OpenAITeacherEvent[] = [];
    const again = new OpenAITeacher({ baseURL: child.url, tokenizer, model: 'tiny', cacheDir, onEvent: (e) => replay.push(e) });
    assertSameTopK(await again.topk(batch, k), got);
    assert.equal(replay.filter((e) => e.type === 'request').length, 0);
    assert.equal(replay.filter((e) => e.type === 'response' && e.fromCache).length, B);
  } finally {
    await teacher.close();
    child.child.kill('SIGKILL');
  }
});
