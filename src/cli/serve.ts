/** `lmdistill serve`: an OpenAI-compatible HTTP server for a model folder. */
import path from 'node:path';
import type { Command } from 'commander';
import { startServer } from '../serve/server.js';
import type { ServeEvent } from '../serve/app.js';
import { intArg } from './args.js';
import { loadModelAndTokenizer } from './model-folder.js';

interface ServeFlags {
  model: string;
  tokenizer?: string;
  port: number;
  host: string;
  apiKey?: string;
  modelName?: string;
  maxConcurrency?: number;
  maxQueue?: number;
  maxTokens?: number;
  maxLogprobs?: number;
  maxN?: number;
  maxBodyBytes?: number;
  log?: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve a model over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)')
    .requiredOption('-m, --model <dir>', 'Hugging Face model folder (config.json, model.safetensors, tokenizer.json)')
    .option('--tokenizer <file>', 'tokenizer.json (default: the one in the model folder)')
    .option('-p, --port <n>', 'TCP port (0 = any free port)', intArg('--port', 0), 8000)
    .option('--host <addr>', 'interface to bind; anything but loopback exposes the model to your network', '127.0.0.1')
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" (default: $LMDISTILL_API_KEY; none when unset)')
    .option('--model-name <name>', 'model id clients send and /v1/models lists (default: the folder name)')
    .option('--max-concurrency <n>', 'requests generating at once (default 1)', intArg('--max-concurrency'))
    .option('--max-queue <n>', 'requests waiting for a slot before new ones get 429 (default 32)', intArg('--max-queue', 0))
    .option('--max-tokens <n>', 'largest max_tokens a request may ask for (default 1024)', intArg('--max-tokens'))
    .option('--max-logprobs <n>', 'largest logprobs / top_logprobs a request may ask for (default 20)', intArg('--max-logprobs', 0))
    .option('--max-n <n>', 'largest n (choices per prompt) a request may ask for (default 16)', intArg('--max-n'))
    .option('--max-body-bytes <n>', 'largest request body in bytes (default 8 MiB)', intArg('--max-body-bytes'))
    .option('--log', 'print one line per request on stderr')
    .addHelpText('after', `
Endpoints (OpenAI-compatible): GET /v1/models, POST /v1/completions, POST /v1/chat/completions, GET /health.
Completions take a string, a list of strings, token ids or a list of token-id lists as prompt; logprobs: k,
echo, n, stop, seed, stream, top_p, top_k and vLLM's return_tokens_as_token_ids ("token_id:123" tokens).
A distillation teacher asks {prompt: [ids], echo: true, max_tokens: 1, logprobs: k} for the top-k at every
position (raise --max-logprobs for large k).
Chat has no model template: messages become "System: ...", "User: ...", "Assistant: ..." turns separated by
a blank line, ending in "Assistant:"; replies stop at end-of-text, max_tokens, "\\nUser:" or "\\nSystem:".
Over --max-concurrency + --max-queue requests get 429; errors are OpenAI JSON {"error": {...}}.`)
    .action(serveCommand);
}

/** Runs the server until SIGINT/SIGTERM, then shuts it down gracefully. */
export async function serveCommand(o: ServeFlags): Promise<void> {
  const { model, tokenizer } = loadModelAndTokenizer(o.model, o.tokenizer);
  const apiKey = o.apiKey ?? (process.env.LMDISTILL_API_KEY || undefined);
  const modelName = o.modelName ?? (path.basename(path.resolve(o.model)).replace(/\s+/g, '-') || 'model');
  const onEvent = (e: ServeEvent): void => {
    if (e.type === 'error') {
      const err = e.error;
      process.stderr.write(`lmdistill serve: internal error on ${e.method} ${e.path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    } else if (o.log) {
      process.stderr.write(`${new Date().toISOString()} ${e.method} ${e.path} ${e.status} ${e.ms.toFixed(0)}ms\n`);
    }
  };
  const server = await startServer(model, tokenizer, {
    modelName, host: o.host, port: o.port, apiKey,
    maxConcurrency: o.maxConcurrency, maxQueue: o.maxQueue, maxTokens: o.maxTokens,
    maxLogprobs: o.maxLogprobs, maxN: o.maxN, maxBodyBytes: o.maxBodyBytes,
  }, onEvent);
  process.stderr.write(`lmdistill serve: ${modelName} at ${server.url}${apiKey ? ' (API key required)' : ''} — Ctrl-C to stop\n`);
  if (!apiKey && !/^(127\.|::1$|\[::1\]$|localhost$)/.test(o.host)) {
    process.stderr.write(`lmdistill serve: warning: listening on ${o.host} without an API key; anyone who can reach this address can use the model (set --api-key or LMDISTILL_API_KEY)\n`);
  }

  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`lmdistill serve: ${sig} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      process.stderr.write(`lmdistill serve: ${sig}: finishing running requests (up to ${server.options.shutdownGraceMs / 1000} s)\n`);
      void server.close().then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.stderr.write('lmdistill serve: stopped\n');
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
