/**
 * The chat template. Our tokenizers carry no chat template (and our models are base models), so chat
 * requests are rendered as a plain-text transcript a base model can continue:
 *
 *     System: {system or developer message}
 *
 *     User: {user message}
 *
 *     Assistant: {assistant message}
 *
 *     User: {user message}
 *
 *     Assistant:
 *
 * i.e. each message as `{Role}: {content}` (content trimmed), messages joined by a blank line, and
 * `Assistant:` appended for the reply. The reply ends at the end-of-text token, at `max_tokens`, at a
 * request's `stop` sequences, or when the model starts a new turn: the stop sequences in
 * `CHAT_STOP` ("\nUser:", "\nSystem:") are always active. Leading whitespace of the reply is dropped.
 */
import type { ChatMessage } from './schemas.js';

const ROLE_LABEL: Record<ChatMessage['role'], string> = {
  system: 'System',
  developer: 'System',
  user: 'User',
  assistant: 'Assistant',
};

/** Stop sequences every chat request gets, so the reply does not run on into an invented next turn. */
export const CHAT_STOP: readonly string[] = ['\nUser:', '\nSystem:'];

/** The text of a message's content (text parts concatenated). */
export function messageText(m: ChatMessage): string {
  if (m.content === null) return '';
  return typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
}

/** Renders the messages into the prompt text (see the module comment). */
export function renderChat(messages: readonly ChatMessage[]): string {
  const turns = messages.map((m) => `${ROLE_LABEL[m.role]}: ${messageText(m).trim()}`);
  turns.push('Assistant:');
  return turns.join('\n\n');
}
