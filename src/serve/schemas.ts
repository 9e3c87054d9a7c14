/**
 * Request bodies of the OpenAI endpoints we serve, as zod schemas. Unknown keys are rejected (as
 * OpenAI does: a misspelt `max_token` must not silently fall back to a default). Harmless fields that
 * clients commonly send (`user`, zero penalties, empty `logit_bias`, `best_of` = n) are accepted;
 * features we do not implement are accepted only at their neutral value, otherwise a 400 names them.
 * Limits that depend on the server's configuration are checked by the handlers (`limits.ts`).
 */
import { z } from 'zod';

const tokenId = z.number().int().min(0);
const nullish = <T extends z.ZodType>(t: T) => t.nullable().optional();
const onlyZero = (name: string) => nullish(z.number().refine((v) => v === 0, `${name} is not supported (only 0)`));

/** Fields shared by completions and chat completions. */
const sampling = {
  model: z.string().optional(),
  temperature: nullish(z.number().min(0).max(2)),
  top_p: nullish(z.number().gt(0).max(1)),
  /** vLLM extension: keep the k most likely tokens; 0 or -1 = off */
  top_k: nullish(z.number().int().min(-1)),
  n: nullish(z.number().int().min(1)),
  stop: nullish(z.union([z.string(), z.array(z.string())], { error: 'must be a string or an array of strings' })),
  seed: nullish(z.number().int()),
  stream: nullish(z.boolean()),
  stream_options: nullish(z.strictObject({ include_usage: nullish(z.boolean()), continuous_usage_stats: nullish(z.boolean()) })),
  /** vLLM extension: render tokens as `token_id:<id>` */
  return_tokens_as_token_ids: nullish(z.boolean()),
  user: z.string().optional(),
  presence_penalty: onlyZero('presence_penalty'),
  frequency_penalty: onlyZero('frequency_penalty'),
  logit_bias: nullish(z.record(z.string(), z.number()).refine((m) => Object.keys(m).length === 0, 'logit_bias is not supported (send {} or omit it)')),
};

export const completionRequestSchema = z.strictObject({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).min(1), z.array(tokenId).min(1), z.array(z.array(tokenId)).min(1)], {
    error: 'must be a string, an array of strings, an array of token ids, or an array of arrays of token ids',
  }),
  max_tokens: nullish(z.number().int().min(0)),
  logprobs: nullish(z.number().int().min(0)),
  echo: nullish(z.boolean()),
  best_of: nullish(z.number().int().min(1)),
  suffix: nullish(z.string().max(0, 'suffix is not supported')),
});
export type CompletionRequest = z.output<typeof completionRequestSchema>;

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });

const message = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart)], { error: 'must be a string or an array of {"type": "text", "text": ...} parts' }).nullable(),
  name: z.string().optional(),
  refusal: z.null().optional(),
});
export type ChatMessage = z.output<typeof message>;

export const chatRequestSchema = z.strictObject({
  ...sampling,
  messages: z.array(message).min(1),
  max_tokens: nullish(z.number().int().min(0)),
  max_completion_tokens: nullish(z.number().int().min(0)),
  logprobs: nullish(z.boolean()),
  top_logprobs: nullish(z.number().int().min(0)),
  response_format: nullish(z.strictObject({ type: z.literal('text') })),
  tools: nullish(z.array(z.unknown()).max(0, 'tools are not supported')),
  tool_choice: nullish(z.literal('none')),
  parallel_tool_calls: nullish(z.boolean()),
});
export type ChatRequest = z.output<typeof chatRequestSchema>;
