export { createGuard, Guard } from './guard.js';
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
export { loadConfigFile, parseConfigText, resolveConfig } from './config/load.js';
export { configJsonSchema } from './config/json-schema.js';
export type { PortcullisOptions, JailOptions } from './config/schema.js';
export type { PortcullisConfig, JailConfig, StoreConfig } from './config/types.js';
export { createManualClock, systemClock } from './core/clock.js';
export type { Clock, ManualClock } from './core/clock.js';
export { formatDuration, parseDuration, PERMANENT } from './core/duration.js';
export { ConfigError, ErrorCodes, PortcullisError, isPortcullisError } from './core/errors.js';
export type { ErrorCode } from './core/errors.js';
export { normalizeIp, parseCidr, parseIp } from './core/ip.js';
export { CidrSet } from './core/prefix-trie.js';
export type { Logger } from './core/logger.js';
export type { ClientEvent, Decision } from './core/types.js';
export type { BanEntry } from './decisions/ban-table.js';
export type { Store, StoreMessage } from './stores/store.js';
export { MemoryStore } from './stores/memory/memory-store.js';
