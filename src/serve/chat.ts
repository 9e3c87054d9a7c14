/**
 * `POST /v1/chat/completions`: messages are rendered with the plain-text template of
 * `chat-template.ts`, then generated like a completion. Logprobs (`logprobs: true`, `top_logprobs: k`)
 * follow the chat shape: per token `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`
 * with exactly k alternatives. Every generated token is listed, including an end-of-text token or the
 * tokens of a stop sequence, which are not part of the message text.
 */
import { CHAT_STOP, renderChat } from './chat-template.js';
import type { PreparedRequest } from './completions.js';
import type { TokenLogprob } from './decode.js';
import type { Engine, FinishReason, GenParams } from './engine.js';
import { invalidRequest } from './errors.js';
import { atMost, parseBody, resolveN, resolveStops, resolveTopK, responseId, usage, type Usage } from './limits.js';
import { chatRequestSchema } from './schemas.js';

interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** Validates a chat body against the schema, the model and the server's caps (400/404 on failure). */
export function prepareChat(engine: Engine, body: unknown): PreparedRequest {
  const req = parseBody(chatRequestSchema, body);
  const opts = engine.opts;
  engine.checkModel(req.model);
  const n = resolveN(req.n, null, opts);
  const wantLogprobs = req.logprobs ?? false;
  if (req.top_logprobs !== null && req.top_logprobs !== undefined && !wantLogprobs) {
    throw invalidRequest('top_logprobs requires logprobs: true', 'top_logprobs');
  }
  const topLogprobs = wantLogprobs ? (req.top_logprobs ?? 0) : null;
  if (topLogprobs !== null) atMost(topLogprobs, opts.maxLogprobs, 'top_logprobs');
  const stops = [...CHAT_STOP, ...resolveStops(req.stop, opts)];

  const ids = engine.encode(renderChat(req.messages));
  const maxParam = req.max_completion_tokens !== null && req.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const asked = req.max_completion_tokens ?? req.max_tokens ?? null;
  if (asked !== null) atMost(asked, opts.maxTokens, maxParam);
  // Without a limit the reply may use the rest of the context (as OpenAI), within the server's cap.
  const maxTokens = asked ?? Math.max(1, Math.min(opts.maxTokens, engine.model.maxPositions + 1 - ids.length));
  engine.checkPrompt(ids, maxTokens, 'messages');

  const params: GenParams = {
    n, maxTokens, topLogprobs, stops,
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    topK: resolveTopK(req.top_k),
    seed: req.seed ?? null,
    echo: false,
    trimStart: true,
  };
  const asIds = req.return_tokens_as_token_ids ?? false;
  const includeUsage = req.stream_options?.include_usage ?? false;
  const id = responseId('chatcmpl');
  const created = Math.floor(Date.now() / 1000);
  const r = engine.renderer;
  const tok = (t: number) => ({ token: r.render(t, asIds), bytes: Array.from(r.bytesOf(t)) });
  const entryJson = (e: TokenLogprob): ChatTokenLogprob => ({
    ...tok(e.id),
    logprob: e.logprob,
    top_logprobs: e.top.map((t) => ({ ...tok(t.id), logprob: t.logprob })),
  });

  return {
    stream: req.stream ?? false,

    async run(signal) {
      const choices: unknown[] = [];
      let completionTokens = 0;
      let entries: ChatTokenLogprob[] = [];
      for await (const ev of engine.generate([ids], params, signal)) {
        if (ev.type === 'token') {
          if (topLogprobs !== null) entries.push(entryJson(ev.entry));
        } else if (ev.type === 'end') {
          completionTokens += ev.completionTokens;
          choices.push({
            index: ev.choice,
            message: { role: 'assistant', content: ev.text, refusal: null },
            logprobs: topLogprobs === null ? null : { content: entries, refusal: null },
            finish_reason: ev.finishReason,
          });
          entries = [];
        }
      }
      return { id, object: 'chat.completion', created, model: engine.modelName, choices, usage: usage(ids.length, completionTokens) };
    },

    async *chunks(signal) {
      const chunk = (choices: unknown[], u?: Usage) => ({
        id, object: 'chat.completion.chunk', created, model: engine.modelName, choices, ...(u ? { usage: u } : {}),
      });
      const choice = (index: number, delta: object, logprobs: ChatTokenLogprob[] | null, finish: FinishReason | null) => ({
        index, delta, logprobs: logprobs === null ? null : { content: logprobs, refusal: null }, finish_reason: finish,
      });
      let completionTokens = 0;
      let current = -1;
      for await (const ev of engine.generate([ids], params, signal)) {
        if (ev.type === 'prompt') continue;
        if (ev.choice !== current) {
          current = ev.choice;
          yield chunk([choice(current, { role: 'assistant', content: '' }, null, null)]);
        }
        if (ev.type === 'token') {
          yield chunk([choice(ev.choice, { content: ev.delta }, topLogprobs === null ? null : [entryJson(ev.entry)], null)]);
        } else {
          completionTokens += ev.completionTokens;
          yield chunk([choice(ev.choice, ev.delta ? { content: ev.delta } : {}, null, ev.finishReason)]);
        }
      }
      if (includeUsage) yield chunk([], usage(ids.length, completionTokens));
    },
  };
}
