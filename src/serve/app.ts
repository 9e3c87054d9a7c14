/**
 * The HTTP surface (Hono): routes, API-key check, body-size limit, admission through the work queue,
 * streaming as server-sent events, and OpenAI-style JSON errors for every failure.
 *
 *   GET  /health                 200 {"status": "ok"} (no key needed: for load balancers and scripts)
 *   GET  /v1/models              the served model
 *   GET  /v1/models/{id}         one model (404 for any other id)
 *   POST /v1/completions         see completions.ts
 *   POST /v1/chat/completions    see chat.ts
 *
 * Streams are pull-driven: the next token is computed when the client has taken the previous chunk, so
 * a slow reader never makes the server buffer, and a client that disconnects stops its generation.
 */
import { timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { PreparedRequest } from './completions.js';
import { prepareChat } from './chat.js';
import { prepareCompletion } from './completions.js';
import type { Engine } from './engine.js';
import { ApiError, invalidRequest } from './errors.js';
import { QueueClosedError, QueueFullError, type WorkQueue } from './queue.js';

/** What the server reports to its owner (the library never prints; the CLI decides what to show). */
export type ServeEvent =
  | { type: 'request'; method: string; path: string; status: number; ms: number }
  | { type: 'error'; method: string; path: string; error: unknown };

const ROUTES: Record<string, string> = {
  '/health': 'GET',
  '/v1/models': 'GET',
  '/v1/completions': 'POST',
  '/v1/chat/completions': 'POST',
};

function errorResponse(err: ApiError): Response {
  return new Response(JSON.stringify(err.toJSON()), { status: err.status, headers: { 'content-type': 'application/json' } });
}

/** Constant-time comparison of the presented key with the configured one. */
function keyMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented), b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Builds the Hono app over an engine and its queue. */
export function createApp(engine: Engine, queue: WorkQueue, onEvent: (e: ServeEvent) => void = () => {}): Hono {
  const opts = engine.opts;
  const app = new Hono();

  app.use('*', async (c, next) => {
    const t0 = performance.now();
    await next();
    onEvent({ type: 'request', method: c.req.method, path: c.req.path, status: c.res.status, ms: performance.now() - t0 });
  });

  app.get('/health', (c) => c.json({ status: 'ok' }));

  if (opts.apiKey !== undefined) {
    const expected = opts.apiKey;
    app.use('/v1/*', async (c, next) => {
      const header = c.req.header('authorization');
      if (!header) {
        throw new ApiError(401, "You didn't provide an API key. Send it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null, 'invalid_api_key');
      }
      const m = /^Bearer\s+(.+)$/i.exec(header);
      if (!m || !keyMatches(m[1]!.trim(), expected)) throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
      await next();
    });
  }

  app.use('/v1/*', bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: () => errorResponse(new ApiError(413, `Request body is larger than this server's limit of ${opts.maxBodyBytes} bytes.`, 'invalid_request_error', null, 'request_too_large')),
  }));

  const modelCard = () => ({
    id: engine.modelName, object: 'model', created: engine.created, owned_by: 'lmdistill', max_model_len: engine.model.maxPositions,
  });
  app.get('/v1/models', (c) => c.json({ object: 'list', data: [modelCard()] }));
  app.get('/v1/models/:id{.+}', (c) => {
    engine.checkModel(c.req.param('id'));
    return c.json(modelCard());
  });

  app.post('/v1/completions', (c) => serve(c, (body) => prepareCompletion(engine, body)));
  app.post('/v1/chat/completions', (c) => serve(c, (body) => prepareChat(engine, body)));

  /** Parse → validate → wait for a slot → run (or stream). */
  async function serve(c: Context, prepare: (body: unknown) => PreparedRequest): Promise<Response> {
    const text = await c.req.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw invalidRequest(`We could not parse the JSON body of your request (${(e as Error).message}). Send a JSON object with Content-Type: application/json.`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidRequest('The request body must be a JSON object.');
    const prepared = prepare(body);
    const signal = c.req.raw.signal;
    let release: () => void;
    try {
      release = await queue.acquire(signal);
    } catch (e) {
      if (e instanceof QueueFullError) {
        throw new ApiError(429, `The server is busy (${e.running} requests running, ${e.waiting} waiting, limits ${queue.maxConcurrency} + ${queue.maxQueue}); retry after a short wait.`, 'rate_limit_error', null, 'rate_limit_exceeded');
      }
      if (e instanceof QueueClosedError) throw new ApiError(503, 'The server is shutting down.', 'server_error', null, 'shutting_down');
      return new Response(null, { status: 499 }); // the client left while waiting
    }
    if (!prepared.stream) {
      try {
        return c.json(await prepared.run(signal) as object);
      } catch (e) {
        if (signal.aborted) return new Response(null, { status: 499 });
        throw e;
      } finally {
        release();
      }
    }
    return sseResponse(prepared.chunks(signal), release, (error) => {
      if (!signal.aborted) onEvent({ type: 'error', method: c.req.method, path: c.req.path, error });
    });
  }

  app.notFound((c) => {
    const path = c.req.path.replace(/\/+$/, '');
    const method = ROUTES[path] ?? (path.startsWith('/v1/models/') ? 'GET' : undefined);
    if (method) return errorResponse(new ApiError(405, `Method ${c.req.method} is not allowed on ${path} (use ${method}).`, 'invalid_request_error', null, 'method_not_allowed'));
    return errorResponse(new ApiError(404, `Invalid URL (${c.req.method} ${c.req.path})`, 'invalid_request_error', null, 'unknown_url'));
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(err);
    onEvent({ type: 'error', method: c.req.method, path: c.req.path, error: err });
    return errorResponse(new ApiError(500, `Internal server error: ${err instanceof Error ? err.message : String(err)}`, 'server_error'));
  });

  return app;
}

/**
 * Server-sent events: one `data: {json}\n\n` per chunk and `data: [DONE]\n\n` at the end. An error after
 * the headers went out is sent as a `data: {"error": ...}` event before [DONE] (the status is already 200).
 */
function sseResponse(chunks: AsyncGenerator<unknown, void, undefined>, release: () => void, onError: (e: unknown) => void): Response {
  const enc = new TextEncoder();
  const event = (data: unknown) => enc.encode(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const r = await chunks.next();
        if (!r.done) return ctrl.enqueue(event(r.value));
        ctrl.enqueue(event('[DONE]'));
        ctrl.close();
        release();
      } catch (e) {
        release();
        const err = e instanceof ApiError ? e : new ApiError(500, `Internal server error: ${e instanceof Error ? e.message : String(e)}`, 'server_error');
        if (!(e instanceof ApiError)) onError(e);
        try {
          ctrl.enqueue(event(err.toJSON()));
          ctrl.enqueue(event('[DONE]'));
          ctrl.close();
        } catch {
          // the client already went away (stream cancelled): nothing to tell
        }
      }
    },
    async cancel() {
      release();
      await chunks.return().catch(() => {}); // the request signal has aborted too; its error is expected
    },
  });
  return new Response(body, {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' },
  });
}
