/** The library surface: build the chat into another program or Express app. */
export { Chat, type ChatObserver, type ChatOptions } from './core/chat.js';
export { ChatError, type ErrorCode } from './core/errors.js';
export { MemoryStore, type MemoryStoreOptions } from './core/memory-store.js';
export { StoreOpenError, StoreUnavailableError, type ChangeListener, type Store } from './core/store.js';
export { SqliteStore, type SqliteStoreOptions } from './stores/sqlite-store.js';
export { RedisStore, type RedisStoreOptions } from './stores/redis-store.js';
export type { AppendResult, Draft, Message, RoomState, Slice } from './core/types.js';
export { PollAnswer, type Outcome, type PollBody } from './core/answer.js';
export type { Deliver, Poll, PollRequest, WakeProgress } from './core/poll-hub.js';
export { createChatRouter, type ChatRouterOptions } from './http/router.js';
export { createApp, createRequestListener, type AppOptions } from './http/app.js';
export { answerAsJson } from './http/node-answers.js';
export { createLog, silentLog, type Log } from './log.js';
export { Metrics } from './http/metrics.js';
export { STATUS } from './http/errors.js';
export { DEFAULTS, loadConfig, type Config, type StoreKind } from './config.js';
export { startServer, type RunningServer } from './server.js';
