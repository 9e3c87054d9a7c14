/** OpenAI-compatible server for our models (`lmdistill serve`). */
export { startServer, type RunningServer } from './server.js';
export { serveOptionsSchema, type ServeOptions, type ServeOptionsIn } from './config.js';
export type { ServeEvent } from './app.js';
export { createApp } from './app.js';
export { Engine } from './engine.js';
export { WorkQueue, QueueFullError, QueueClosedError } from './queue.js';
export { CHAT_STOP, renderChat } from './chat-template.js';
export { prefill, decodeFrom, forkCache, topEntries, logSumExp, type TokenLogprob, type TopEntry, type Prefilled } from './decode.js';
export { ApiError } from './errors.js';
