export { type CompiledHttpFilter, compileHttpFilter, distinctValue, statusSet } from './compile.js';
export { DistinctTracker, type DistinctTrackerOptions } from './distinct.js';
export {
  DISTINCT_FIELDS,
  type DistinctField,
  filterProblems,
  HTTP_FILTER_KEYS,
  type HttpFilterSpec,
  httpFilterSchema,
  REQUEST_FIELDS,
  re2Problem,
  type StatusSpec,
} from './filter-schema.js';
export { HTTP_FIELDS } from './http-fields.js';
export { type HttpJailResolution, resolveHttpJail } from './jail-options.js';
export { parseRate, RATE_PATTERN, type RateSpec } from './rate.js';
export {
  BUNDLED_HTTP_RULES_DIR,
  bundledHttpRules,
  type HttpRule,
  HttpRuleError,
  loadHttpRule,
} from './rules.js';
