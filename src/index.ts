export type { Action, ActionContext, ActionFactory } from './actions/action.js';
export {
  ActionRunner,
  type ActionRunnerOptions,
  type ActionStats,
  type DecisionFeed,
} from './actions/runner.js';
export { configJsonSchema } from './config/json-schema.js';
export { loadConfigFile, parseConfigText, resolveConfig } from './config/load.js';
export type { JailOptions, PortcullisOptions } from './config/schema.js';
export type { HttpConfig, JailConfig, PortcullisConfig, StoreConfig } from './config/types.js';
export type { Clock, ManualClock } from './core/clock.js';
export { createManualClock, systemClock } from './core/clock.js';
export { formatDuration, PERMANENT, parseDuration } from './core/duration.js';
export type { ErrorCode } from './core/errors.js';
export { ConfigError, ErrorCodes, isPortcullisError, PortcullisError } from './core/errors.js';
export { normalizeIp, parseCidr, parseIp } from './core/ip.js';
export type { Logger } from './core/logger.js';
export { CidrSet } from './core/prefix-trie.js';
export type { BanEntry, ClientEvent, Decision, EventFields } from './core/types.js';
export type { DecisionListener, SubscribeOptions } from './decisions/decision-book.js';
export type { HttpFilterSpec, HttpRule } from './detection/filters/http/index.js';
export { bundledHttpRules, compileHttpFilter, loadHttpRule } from './detection/filters/http/index.js';
export type {
  BanOptions,
  DecisionSource,
  GuardConfigInput,
  GuardEventMap,
  GuardOptions,
  GuardStats,
  ReportOptions,
  ReportOutcome,
  ReportResult,
  UnbanEvent,
} from './guard.js';
export { createGuard, Guard } from './guard.js';
export type {
  ClientIpOptions,
  ClientIpResolver,
  Denial,
  ForwardedHeader,
  HttpEvent,
  HttpPipeline,
  HttpPipelineOptions,
  HttpPipelineStats,
} from './sources/http/index.js';
export {
  createClientIpResolver,
  createHttpPipeline,
  originalClientAddress,
  pipelineFor,
} from './sources/http/index.js';
export type { SourceFactory } from './sources/registry.js';
export { SourceRegistry } from './sources/registry.js';
export type {
  BanCheck,
  FailureSink,
  JailRegistry,
  PositionStore,
  Source,
  SourceContext,
  SourceStats,
} from './sources/source.js';
export { MemoryStore } from './stores/memory/memory-store.js';
export type { Store, StoreMessage } from './stores/store.js';
