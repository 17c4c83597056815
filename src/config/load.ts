import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type * as z from 'zod';
import { parseDuration } from '../core/duration.js';
import { ConfigError, ErrorCodes, PortcullisError } from '../core/errors.js';
import { resolveHttpJail } from '../detection/filters/http/jail-options.js';
import { resolveLogJail } from '../detection/filters/regex/jail-options.js';
import { DEFAULTS, MANUAL_JAIL } from './defaults.js';
import { configSchema, type JailOptions, type PortcullisOptions } from './schema.js';
import type {
  HttpConfig,
  JailConfig,
  PortcullisConfig,
  ProxyConfig,
  SourceConfig,
  StoreConfig,
} from './types.js';

/**
 * Environment variables that override the file, for containers. Each maps to one key path; the
 * value is parsed as YAML, so `PORTCULLIS_DEFAULTS_MAXRETRY=3` is the number 3.
 */
export const ENV_OVERRIDES: Readonly<Record<string, readonly string[]>> = {
  PORTCULLIS_REDIS_URL: ['store', 'redis', 'url'],
  PORTCULLIS_REDIS_PREFIX: ['store', 'redis', 'prefix'],
  PORTCULLIS_SQLITE_PATH: ['store', 'sqlite', 'path'],
  PORTCULLIS_ON_STORE_ERROR: ['store', 'on_store_error'],
  PORTCULLIS_DBPURGEAGE: ['store', 'dbpurgeage'],
  PORTCULLIS_LOG_LEVEL: ['log', 'level'],
  PORTCULLIS_DEFAULTS_MAXRETRY: ['defaults', 'maxretry'],
  PORTCULLIS_DEFAULTS_FINDTIME: ['defaults', 'findtime'],
  PORTCULLIS_DEFAULTS_BANTIME: ['defaults', 'bantime'],
  PORTCULLIS_DEFAULTS_DRYRUN: ['defaults', 'dryrun'],
};

export interface LoadOptions {
  /** Environment to read overrides from. Default `process.env`; pass `{}` for none. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Reads, validates and resolves a YAML config file. Throws {@link ConfigError} naming the problem. */
export function loadConfigFile(path: string, options: LoadOptions = {}): PortcullisConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new PortcullisError(
      ErrorCodes.CONFIG_NOT_FOUND,
      `${path}: cannot read the configuration: ${reason}`,
      {
        cause: error,
      },
    );
  }
  return parseConfigText(text, path, options);
}

/** Validates YAML text; `name` is what error messages call the file. */
export function parseConfigText(text: string, name: string, options: LoadOptions = {}): PortcullisConfig {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const at = error.linePos?.[0];
        const where = at === undefined ? name : `${name}:${at.line}:${at.col}`;
        return `${where}: invalid YAML: ${(error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    );
  }
  const raw = (document.toJS() ?? {}) as unknown;
  const base = name === '<config>' ? process.cwd() : dirname(resolve(name));
  return resolveConfig(raw, {
    name,
    baseDir: base,
    file: name === '<config>' ? null : resolve(name),
    ...options,
  });
}

export interface ResolveOptions extends LoadOptions {
  /** What errors call the input. Default `<config>`. */
  name?: string;
  /** Relative paths (the SQLite file) resolve against this. Default the working directory. */
  baseDir?: string;
  file?: string | null;
}

/** Validates a config object (the YAML shape) and resolves defaults, env overrides and units. */
export function resolveConfig(input: unknown, options: ResolveOptions = {}): PortcullisConfig {
  const name = options.name ?? '<config>';
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError([
      `${name}: expected a mapping of settings at the top level, got ${describe(input)}`,
    ]);
  }
  const { value, fromEnv } = applyEnv(input as Record<string, unknown>, options.env ?? process.env);
  const result = configSchema.safeParse(value, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => formatIssue(issue, name, fromEnv)));
  }
  return buildConfig(result.data, name, options.baseDir ?? process.cwd(), options.file ?? null);
}

function buildConfig(
  options: z.output<typeof import('./schema.js').configSchema>,
  name: string,
  baseDir: string,
  file: string | null,
): PortcullisConfig {
  const problems: string[] = [];
  const defaults = options.defaults ?? {};
  const jails: JailConfig[] = [];
  for (const [jailName, jailOptions] of Object.entries(options.jails ?? {})) {
    if (jailName === MANUAL_JAIL) {
      problems.push(`${name}: jails.${jailName}: "${MANUAL_JAIL}" is reserved for bans made by hand`);
      continue;
    }
    const own = jailOptions ?? {};
    const http = resolveHttpJail(jailName, own, defaults, {
      name,
      baseDir,
      formatIssue: (issue) => formatIssue(issue, name),
    });
    problems.push(...http.problems);
    const merged = { ...defaults, ...(http.ruleSettings as JailOptions), ...own };
    const log = resolveLogJail(jailName, merged, { name, baseDir });
    problems.push(...log.problems);
    jails.push({
      ...buildJail(jailName, merged, defaults),
      ...log.settings,
      httpFilter: http.httpFilter as JailConfig['httpFilter'],
      rate: http.rate,
    });
  }
  if (defaults.rate !== undefined) {
    problems.push(`${name}: defaults.rate: a request rate belongs on one http jail, not in defaults`);
  }
  const http = buildHttp(options.http, baseDir, name, problems);
  const proxy =
    options.proxy === undefined ? undefined : buildProxy(options.proxy, http, baseDir, name, problems);
  const store = buildStore(options.store, baseDir, name, problems, file !== null);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    file,
    store,
    onStoreError: options.store?.on_store_error ?? DEFAULTS.onStoreError,
    dbPurgeAgeMs: parseDuration(options.store?.dbpurgeage ?? DEFAULTS.dbpurgeage),
    log: { level: options.log?.level ?? DEFAULTS.logLevel },
    jails,
    http,
    ...(proxy === undefined ? {} : { proxy }),
  });
}

function buildProxy(
  proxy: NonNullable<z.output<typeof configSchema>['proxy']>,
  http: HttpConfig,
  baseDir: string,
  name: string,
  problems: string[],
): ProxyConfig {
  const d = DEFAULTS.proxy;
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  if ((proxy.target === undefined) === (proxy.targets === undefined)) {
    problems.push(`${name}: proxy: set exactly one of target or targets`);
  }
  const listeners = Array.isArray(proxy.listen) ? proxy.listen : [proxy.listen];
  const listen = listeners.map((l, i) => {
    const entry = typeof l === 'string' ? { address: l } : l;
    const tls = entry.tls ?? proxy.tls !== undefined;
    if (tls && proxy.tls === undefined) {
      problems.push(`${name}: proxy.listen.${i}.tls: needs proxy.tls { cert, key }`);
    }
    return { address: entry.address, proxyProtocol: entry.proxy_protocol ?? false, tls };
  });
  let deny: ProxyConfig['deny'] = http.deny;
  if (proxy.deny === 'drop') deny = 'drop';
  else if (typeof proxy.deny === 'number') deny = { ...http.deny, status: proxy.deny };
  else if (proxy.deny !== undefined) {
    const page = proxy.deny.page === undefined ? undefined : at(proxy.deny.page);
    let body = proxy.deny.body ?? http.deny.body;
    let contentType = proxy.deny.body === undefined ? http.deny.contentType : 'text/plain; charset=utf-8';
    if (page !== undefined) {
      try {
        body = readFileSync(page, 'utf8');
        contentType = 'text/html; charset=utf-8';
      } catch (error) {
        problems.push(
          `${name}: proxy.deny.page: cannot read ${page}: ${(error as NodeJS.ErrnoException).code}`,
        );
      }
    }
    deny = { status: proxy.deny.status ?? http.deny.status, body, contentType };
  }
  const tls = proxy.tls === undefined ? null : { cert: at(proxy.tls.cert), key: at(proxy.tls.key) };
  for (const key of ['cert', 'key'] as const) {
    if (tls === null) break;
    try {
      readFileSync(tls[key]);
    } catch (error) {
      problems.push(
        `${name}: proxy.tls.${key}: cannot read ${tls[key]}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  }
  const t = proxy.timeouts ?? {};
  const ms = (value: string | number | undefined, fallback: number) =>
    value === undefined ? fallback : parseDuration(value);
  if (ms(t.request, d.requestTimeoutMs) < ms(t.header, d.headerTimeoutMs)) {
    problems.push(`${name}: proxy.timeouts.request: must be at least timeouts.header`);
  }
  const log = proxy.access_log;
  return {
    listen,
    targets: proxy.targets ?? (proxy.target === undefined ? [] : [proxy.target]),
    trustedProxies: proxy.trusted_proxies ?? http.trustedProxies,
    deny,
    headerTimeoutMs: ms(t.header, d.headerTimeoutMs),
    requestTimeoutMs: ms(t.request, d.requestTimeoutMs),
    idleTimeoutMs: ms(t.idle, d.idleTimeoutMs),
    keepAliveTimeoutMs: ms(t.keep_alive, d.keepAliveTimeoutMs),
    upstreamTimeoutMs: ms(t.upstream, d.upstreamTimeoutMs),
    proxyProtocolTimeoutMs: ms(t.proxy_protocol, d.proxyProtocolTimeoutMs),
    shutdownTimeoutMs: ms(t.shutdown, d.shutdownTimeoutMs),
    maxHeaderSize: proxy.max_header_size ?? d.maxHeaderSize,
    maxConnectionsPerIp: proxy.max_connections_per_ip ?? 0,
    maxSockets: proxy.max_sockets ?? d.maxSockets,
    targetDownMs: ms(proxy.target_down_time, d.targetDownMs),
    preserveHost: proxy.preserve_host ?? true,
    tls,
    accessLog:
      log === undefined
        ? null
        : {
            path: at(log.path),
            format: log.format ?? d.accessLogFormat,
            flushIntervalMs: ms(log.flush_interval, d.accessLogFlushIntervalMs),
          },
  };
}

function buildHttp(
  http: z.output<typeof configSchema>['http'],
  baseDir: string,
  name: string,
  problems: string[],
): HttpConfig {
  const deny = http?.deny;
  let body = deny?.body ?? DEFAULTS.http.denyBody;
  let contentType = 'text/plain; charset=utf-8';
  if (deny?.page !== undefined) {
    const page = isAbsolute(deny.page) ? deny.page : resolve(baseDir, deny.page);
    try {
      body = readFileSync(page, 'utf8');
      contentType = 'text/html; charset=utf-8';
    } catch (error) {
      problems.push(
        `${name}: http.deny.page: cannot read ${page}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  return {
    trustedProxies: http?.trusted_proxies ?? [],
    forwardedHeader: http?.forwarded_header ?? DEFAULTS.http.forwardedHeader,
    deny: { status: deny?.status ?? DEFAULTS.http.denyStatus, body, contentType },
  };
}

function buildJail(name: string, merged: JailOptions, defaults: JailOptions): JailConfig {
  const d = DEFAULTS.jail;
  const increment = {
    ...DEFAULTS.bantimeIncrement,
    ...(defaults.bantime_increment ?? {}),
    ...(merged.bantime_increment ?? {}),
  };
  return {
    name,
    enabled: merged.enabled ?? d.enabled,
    source: buildSource(merged.source),
    filter: merged.filter ?? null,
    maxRetry: merged.maxretry ?? d.maxretry,
    findTimeMs: parseDuration(merged.findtime ?? d.findtime),
    banTimeMs: parseDuration(merged.bantime ?? d.bantime),
    banTimeIncrement: increment.enabled
      ? {
          factor: increment.factor ?? 1,
          multipliers: increment.multipliers ?? null,
          maxTimeMs: increment.maxtime === undefined ? null : parseDuration(increment.maxtime),
          rndTimeMs: parseDuration(increment.rndtime ?? 0),
          overallJails: increment.overalljails ?? false,
        }
      : null,
    ignoreIp: merged.ignoreip ?? [...d.ignoreip],
    ignoreSelf: merged.ignoreself ?? d.ignoreself,
    dryRun: merged.dryrun ?? d.dryrun,
    ipv6Prefix: merged.ipv6_prefix ?? d.ipv6_prefix,
    actions: merged.actions ?? [],
  };
}

function buildSource(source: JailOptions['source']): SourceConfig {
  if (source === undefined || source === 'api') return { kind: 'api' };
  if (source === 'http') return { kind: 'http' };
  if (source === 'socket') return { kind: 'socket' };
  if ('log' in source) {
    const paths = Array.isArray(source.log) ? source.log : [source.log];
    return source.start === undefined ? { kind: 'log', paths } : { kind: 'log', paths, start: source.start };
  }
  return { kind: 'command', argv: source.command };
}

function buildStore(
  store: z.output<typeof configSchema>['store'],
  baseDir: string,
  name: string,
  problems: string[],
  fromFile: boolean,
): StoreConfig {
  if (store?.memory) return { kind: 'memory' };
  if (store?.redis !== undefined) {
    const redis = typeof store.redis === 'string' ? { url: store.redis } : store.redis;
    const modes = [redis.url, redis.sentinels, redis.cluster].filter((v) => v !== undefined).length;
    if (modes !== 1) problems.push(`${name}: store.redis: set exactly one of url, sentinels or cluster`);
    if (redis.sentinels !== undefined && redis.name === undefined) {
      problems.push(`${name}: store.redis.name: the Sentinel master group name is required with sentinels`);
    }
    return {
      kind: 'redis',
      ...(redis.url === undefined ? {} : { url: redis.url }),
      ...(redis.sentinels === undefined ? {} : { sentinels: redis.sentinels }),
      ...(redis.name === undefined ? {} : { sentinelName: redis.name }),
      ...(redis.cluster === undefined ? {} : { cluster: redis.cluster }),
      ...(redis.username === undefined ? {} : { username: redis.username }),
      ...(redis.password === undefined ? {} : { password: redis.password }),
      ...(redis.db === undefined ? {} : { db: redis.db }),
      ...(redis.tls === undefined ? {} : { tls: redis.tls }),
      prefix: redis.prefix ?? DEFAULTS.redisPrefix,
      commandTimeoutMs: parseDuration(redis.command_timeout ?? DEFAULTS.redisCommandTimeout),
      outbox: outboxPath(redis.outbox, baseDir, fromFile),
    };
  }
  const sqlite = store?.sqlite ?? DEFAULTS.sqlitePath;
  const path = typeof sqlite === 'string' ? sqlite : sqlite.path;
  return { kind: 'sqlite', path: path === ':memory:' || isAbsolute(path) ? path : resolve(baseDir, path) };
}

/** `store.redis.outbox` resolved: an absolute path, or `null` for memory. */
function outboxPath(outbox: string | null | undefined, baseDir: string, fromFile: boolean): string | null {
  if (outbox === null) return null;
  if (outbox === undefined) return fromFile ? resolve(baseDir, DEFAULTS.redisOutbox) : null;
  return isAbsolute(outbox) ? outbox : resolve(baseDir, outbox);
}

function applyEnv(
  input: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
): { value: Record<string, unknown>; fromEnv: Map<string, string> } {
  const value = structuredClone(input);
  const fromEnv = new Map<string, string>();
  for (const [variable, path] of Object.entries(ENV_OVERRIDES)) {
    const text = env[variable];
    if (text === undefined || text === '') continue;
    const store = value.store as Record<string, unknown> | undefined;
    if (path[0] === 'store' && (path[1] === 'redis' || path[1] === 'sqlite')) {
      // Choosing a backend by environment replaces the file's choice rather than clashing with it.
      const other = path[1] === 'redis' ? ['sqlite', 'memory'] : ['redis', 'memory'];
      if (store !== undefined && typeof store === 'object') for (const key of other) delete store[key];
      const current = store?.[path[1]];
      if (typeof current === 'string') {
        (store as Record<string, unknown>)[path[1]] =
          path[1] === 'redis' ? { url: current } : { path: current };
      }
    }
    setPath(value, path, TEXT_ENV.has(variable) ? text : parseEnvValue(text));
    fromEnv.set(path.join('.'), variable);
  }
  return { value, fromEnv };
}

/** Variables whose setting is always text: `PORTCULLIS_REDIS_PREFIX=42` is the prefix "42". */
const TEXT_ENV = new Set([
  'PORTCULLIS_REDIS_URL',
  'PORTCULLIS_REDIS_PREFIX',
  'PORTCULLIS_SQLITE_PATH',
  'PORTCULLIS_ON_STORE_ERROR',
  'PORTCULLIS_LOG_LEVEL',
]);

function parseEnvValue(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/** `portcullis.yaml: jails.sshd.findtime: expected a duration like "10m", got "10 minutes"` */
export function formatIssue(
  issue: z.core.$ZodIssue,
  name: string,
  fromEnv: ReadonlyMap<string, string> = new Map(),
): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(path);
    return issue.keys
      .map((key) => {
        const suggestion = closest(key, known);
        const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
        return `${name}: ${[...path, key].join('.')}: unknown setting${hint}`;
      })
      .join('\n');
  }
  const where = path.length === 0 ? '(top level)' : path.join('.');
  const variable = fromEnv.get(where);
  const origin = variable === undefined ? name : `${name} (from environment ${variable})`;
  return `${origin}: ${where}: ${describeIssue(issue)}`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  if (
    /\bgot\b/.test(issue.message) ||
    issue.message.startsWith('choose ') ||
    issue.message.startsWith('set ')
  ) {
    return issue.message;
  }
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${article(issue.expected)}, got ${describe(input)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(input)}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `expected at least ${issue.minimum} entries, got ${describe(input)}`
        : `expected at least ${issue.minimum}, got ${describe(input)}`;
    case 'too_big':
      return `expected at most ${issue.maximum}, got ${describe(input)}`;
    case 'invalid_key':
      return issue.issues[0]?.message ?? `invalid key, got ${describe(input)}`;
    case 'invalid_format':
      return `expected text matching ${issue.pattern ?? issue.format}, got ${describe(input)}`;
    default:
      return `${issue.message}, got ${describe(input)}`;
  }
}

function article(type: string): string {
  if (type === 'object' || type === 'record') return 'a mapping';
  if (type === 'boolean') return 'true or false';
  if (type === 'array') return 'a list';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return `a list ${truncate(JSON.stringify(value))}`;
  if (typeof value === 'object') return `a mapping ${truncate(JSON.stringify(value))}`;
  return truncate(JSON.stringify(value));
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const JAIL_KEYS = [
  'enabled',
  'source',
  'filter',
  'maxretry',
  'findtime',
  'bantime',
  'bantime_increment',
  'ignoreip',
  'ignoreself',
  'dryrun',
  'ipv6_prefix',
  'actions',
  'rate',
  'mode',
  'datepattern',
  'logtimezone',
  'max_line_length',
];
const KEYS_AT: Record<string, string[]> = {
  '': ['$schema', 'store', 'log', 'http', 'proxy', 'defaults', 'jails'],
  proxy: [
    'listen',
    'target',
    'targets',
    'trusted_proxies',
    'deny',
    'timeouts',
    'max_header_size',
    'max_connections_per_ip',
    'max_sockets',
    'target_down_time',
    'preserve_host',
    'tls',
    'access_log',
  ],
  'proxy.timeouts': ['header', 'request', 'idle', 'keep_alive', 'upstream', 'proxy_protocol', 'shutdown'],
  'proxy.tls': ['cert', 'key'],
  'proxy.access_log': ['path', 'format', 'flush_interval'],
  http: ['trusted_proxies', 'forwarded_header', 'deny'],
  'http.deny': ['status', 'body', 'page'],
  store: ['sqlite', 'redis', 'memory', 'on_store_error', 'dbpurgeage'],
  'store.redis': [
    'url',
    'sentinels',
    'name',
    'cluster',
    'username',
    'password',
    'db',
    'tls',
    'prefix',
    'command_timeout',
  ],
  log: ['level'],
  defaults: JAIL_KEYS,
  jail: JAIL_KEYS,
  bantime_increment: ['enabled', 'factor', 'multipliers', 'maxtime', 'rndtime', 'overalljails'],
};

function knownKeysAt(path: readonly string[]): readonly string[] {
  if (path.length === 2 && path[0] === 'jails') return KEYS_AT.jail as string[];
  const last = path[path.length - 1];
  if (last === 'bantime_increment') return KEYS_AT.bantime_increment as string[];
  return KEYS_AT[path.join('.')] ?? [];
}

/** The known key nearest to `key` by edit distance, when it is plausibly a typo. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export type { PortcullisOptions };
