/**
 * Starting and stopping the OpenAI-compatible server for a model in this process.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { parseWith } from '../config/zod.js';
import { UserError } from '../errors.js';
import type { CausalLM } from '../models/base.js';
import type { BpeTokenizer } from '../tokenizer/index.js';
import { createApp, type ServeEvent } from './app.js';
import { serveOptionsSchema, type ServeOptions, type ServeOptionsIn } from './config.js';
import { Engine } from './engine.js';
import { WorkQueue } from './queue.js';

export interface RunningServer {
  /** base URL clients use, e.g. `http://127.0.0.1:8000/v1` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly options: ServeOptions;
  /** requests generating / waiting right now */
  stats(): { running: number; waiting: number };
  /**
   * Graceful stop: no new connections, waiting requests get 503, running ones may finish within
   * `shutdownGraceMs`, after which their connections are cut. Resolves when the socket is closed.
   */
  close(): Promise<void>;
}

/**
 * Serves `model` (with `tokenizer` for text) on `options.host:options.port` (loopback and 8000 by
 * default; port 0 picks a free one). `onEvent` receives one event per request and internal errors.
 * Throws `UserError` for invalid options or a port that cannot be bound.
 */
export async function startServer(
  model: CausalLM,
  tokenizer: BpeTokenizer,
  options: ServeOptionsIn,
  onEvent?: (e: ServeEvent) => void,
): Promise<RunningServer> {
  const opts = parseWith(serveOptionsSchema, options, 'serve options');
  if (tokenizer.vocabSize > model.vocabSize) {
    throw new UserError(`the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${model.vocabSize}`, 2);
  }
  const engine = new Engine(model, tokenizer, opts);
  const queue = new WorkQueue(opts.maxConcurrency, opts.maxQueue);
  const app = createApp(engine, queue, onEvent);
  // overrideGlobalObjects: false — a library must not replace the process's global Request/Response.
  const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false }) as Server;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(new UserError(
        e.code === 'EADDRINUSE' ? `cannot listen on ${opts.host}:${opts.port}: the port is in use (pick another with --port)`
          : `cannot listen on ${opts.host}:${opts.port}: ${e.code ?? e.message}`,
      ));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Requests in flight per connection, so shutdown can drop every connection with nothing to finish —
  // including ones a client opened ahead of time and never used, which closeIdleConnections() keeps.
  const inFlight = new Map<Socket, number>();
  server.on('connection', (sock: Socket) => {
    inFlight.set(sock, 0);
    sock.once('close', () => inFlight.delete(sock));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const sock = req.socket;
    inFlight.set(sock, (inFlight.get(sock) ?? 0) + 1);
    res.once('close', () => { if (inFlight.has(sock)) inFlight.set(sock, inFlight.get(sock)! - 1); });
  });
  const dropIdle = () => {
    for (const [sock, n] of inFlight) if (n === 0) sock.destroy();
  };
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostPart}:${addr.port}/v1`,
    host: addr.address,
    port: addr.port,
    options: opts,
    stats: () => queue.stats,
    close() {
      closing ??= new Promise<void>((resolve) => {
        queue.close();
        const timer = setTimeout(() => server.closeAllConnections(), opts.shutdownGraceMs);
        // keep-alive connections become idle as their last response ends: close them as they do
        const sweep = setInterval(dropIdle, 25);
        timer.unref();
        sweep.unref();
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve();
        });
        dropIdle();
      });
      return closing;
    },
  };
}
