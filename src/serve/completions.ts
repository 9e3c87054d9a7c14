/**
 * `POST /v1/completions`: validation, then the full response or its stream of chunks.
 *
 * Logprobs (`logprobs: k`) follow the legacy OpenAI shape — per token `tokens`, `token_logprobs`,
 * `top_logprobs` (a dict of the k most likely token strings, plus the chosen token when it is not among
 * them, so up to k + 1 entries) and `text_offset` (character offset of the token in the returned text).
 * With `echo`, the prompt's tokens come first: the first has null logprob and null top_logprobs (nothing
 * conditions it); token i > 0 has log p(prompt[i] | prompt[<i]) and the top k at that position. So
 * `echo` + `max_tokens: 1` + `logprobs: k` gives the model's top-k at every position of a prompt — the
 * request a distillation teacher makes.
 */
import type { TokenLogprob } from './decode.js';
import type { Engine, FinishReason, GenEvent, GenParams } from './engine.js';
import { atMost, parseBody, resolveN, resolveStops, resolveTopK, responseId, usage, type Usage } from './limits.js';
import { completionRequestSchema } from './schemas.js';
import { tokenOffsets } from './text.js';

/** Legacy completions logprobs object. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReason | null;
}

/** A validated request, ready to run once admitted by the queue. */
export interface PreparedRequest {
  stream: boolean;
  /** the whole response body */
  run(signal?: AbortSignal): Promise<unknown>;
  /** response chunks for `stream: true` (each becomes one `data:` event) */
  chunks(signal?: AbortSignal): AsyncGenerator<unknown, void, undefined>;
}

/** Validates a completions body against the schema, the model and the server's caps (400/404 on failure). */
export function prepareCompletion(engine: Engine, body: unknown): PreparedRequest {
  const req = parseBody(completionRequestSchema, body);
  const opts = engine.opts;
  engine.checkModel(req.model);
  const n = resolveN(req.n, req.best_of, opts);
  const maxTokens = req.max_tokens ?? 16;
  atMost(maxTokens, opts.maxTokens, 'max_tokens');
  const topLogprobs = req.logprobs ?? null;
  if (topLogprobs !== null) atMost(topLogprobs, opts.maxLogprobs, 'logprobs');
  const stops = resolveStops(req.stop, opts);

  const raw = req.prompt;
  const prompts: Int32Array[] = typeof raw === 'string'
    ? [engine.encode(raw)]
    : raw.length > 0 && typeof raw[0] === 'string'
      ? (raw as string[]).map((s) => engine.encode(s))
      : raw.length > 0 && typeof raw[0] === 'number'
        ? [Int32Array.from(raw as number[])]
        : (raw as number[][]).map((ids) => Int32Array.from(ids));
  atMost(prompts.length, opts.maxPrompts, 'prompt', 'the number of prompts');
  atMost(prompts.length * n, opts.maxChoices, 'n', 'prompts × n');
  prompts.forEach((ids, i) => engine.checkPrompt(ids, maxTokens, prompts.length > 1 ? `prompt[${i}]` : 'prompt'));

  const params: GenParams = {
    n, maxTokens, topLogprobs, stops,
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    topK: resolveTopK(req.top_k),
    seed: req.seed ?? null,
    echo: req.echo ?? false,
    trimStart: false,
  };
  const asIds = req.return_tokens_as_token_ids ?? false;
  const includeUsage = req.stream_options?.include_usage ?? false;
  const id = responseId('cmpl');
  const created = Math.floor(Date.now() / 1000);
  const envelope = (choices: CompletionChoice[], u?: Usage) => ({
    id, object: 'text_completion', created, model: engine.modelName, choices, ...(u ? { usage: u } : {}),
  });
  const promptTokens = prompts.reduce((a, p) => a + p.length, 0);

  /** The dict of top tokens at one position (plus the chosen token). */
  const topDict = (e: TokenLogprob): Record<string, number> => {
    const d: Record<string, number> = {};
    for (const t of e.top) {
      const key = engine.renderer.render(t.id, asIds);
      if (!(key in d)) d[key] = t.logprob; // keys can collide without token ids; keep the likelier
    }
    const chosen = engine.renderer.render(e.id, asIds);
    if (!(chosen in d)) d[chosen] = e.logprob;
    return d;
  };
  const tokenLogprobs = (entries: TokenLogprob[], offsets: number[]): CompletionLogprobs => ({
    tokens: entries.map((e) => engine.renderer.render(e.id, asIds)),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map(topDict),
    text_offset: offsets,
  });
  /** Echoed prompt: its text and (when logprobs are on) its logprobs. */
  const echoed = (ev: Extract<GenEvent, { type: 'prompt' }>): { text: string; logprobs: CompletionLogprobs | null } => {
    const text = engine.decode(ev.ids);
    if (topLogprobs === null) return { text, logprobs: null };
    const entries = ev.state.promptLogprobs!;
    return {
      text,
      logprobs: {
        tokens: Array.from(ev.ids, (t) => engine.renderer.render(t, asIds)),
        token_logprobs: entries.map((e) => (e ? e.logprob : null)),
        top_logprobs: entries.map((e) => (e ? topDict(e) : null)),
        text_offset: tokenOffsets(engine.renderer, ev.ids),
      },
    };
  };
  const concat = (a: CompletionLogprobs | null, b: CompletionLogprobs | null): CompletionLogprobs | null => {
    if (!a || !b) return a ?? b;
    return {
      tokens: [...a.tokens, ...b.tokens],
      token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
      top_logprobs: [...a.top_logprobs, ...b.top_logprobs],
      text_offset: [...a.text_offset, ...b.text_offset],
    };
  };

  return {
    stream: req.stream ?? false,

    async run(signal) {
      const choices: CompletionChoice[] = [];
      let completionTokens = 0;
      let echo: { text: string; logprobs: CompletionLogprobs | null } = { text: '', logprobs: null };
      let entries: TokenLogprob[] = [], offsets: number[] = [];
      for await (const ev of engine.generate(prompts, params, signal)) {
        if (ev.type === 'prompt') {
          if (params.echo) echo = echoed(ev);
        } else if (ev.type === 'token') {
          entries.push(ev.entry);
          offsets.push(ev.offset);
        } else {
          completionTokens += ev.completionTokens;
          const lp = topLogprobs === null ? null : concat(echo.logprobs, tokenLogprobs(entries, offsets));
          choices.push({ index: ev.choice, text: echo.text + ev.text, logprobs: lp, finish_reason: ev.finishReason });
          entries = [];
          offsets = [];
        }
      }
      return envelope(choices, usage(promptTokens, completionTokens));
    },

    async *chunks(signal) {
      let completionTokens = 0;
      let echo: { text: string; logprobs: CompletionLogprobs | null } = { text: '', logprobs: null };
      let current = -1;
      for await (const ev of engine.generate(prompts, params, signal)) {
        if (ev.type === 'prompt') {
          if (params.echo) echo = echoed(ev);
          continue;
        }
        if (ev.choice !== current) {
          current = ev.choice;
          if (params.echo) yield envelope([{ index: current, text: echo.text, logprobs: echo.logprobs, finish_reason: null }]);
        }
        if (ev.type === 'token') {
          const lp = topLogprobs === null ? null : tokenLogprobs([ev.entry], [ev.offset]);
          yield envelope([{ index: ev.choice, text: ev.delta, logprobs: lp, finish_reason: null }]);
        } else {
          completionTokens += ev.completionTokens;
          yield envelope([{ index: ev.choice, text: ev.delta, logprobs: null, finish_reason: ev.finishReason }]);
        }
      }
      if (includeUsage) yield envelope([], usage(promptTokens, completionTokens));
    },
  };
}
