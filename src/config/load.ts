import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, visit } from 'yaml';
import type * as z from 'zod';
import { closest } from '../core/closest.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError, ErrorCodes, PortcullisError } from '../core/errors.js';
import { checkCidr } from '../core/ip.js';
import { type FieldFilterSpec, fieldFilterWarnings } from '../detection/filters/fields/filter-schema.js';
import { HTTP_FIELDS } from '../detection/filters/http/http-fields.js';
import { resolveHttpJail } from '../detection/filters/http/jail-options.js';
import { resolveLogJail } from '../detection/filters/regex/jail-options.js';
import { resolveActions } from './actions.js';
import { resolveAdmin } from './admin.js';
import { resolveControl } from './control.js';
import { DEFAULTS, MANUAL_JAIL } from './defaults.js';
import { DEFAULT_HTTP_CONFIG, resolveDenyResponse } from './http.js';
import { packetWatcherSchema, resolvePacketJail, resolvePacketWatchers } from './packets.js';
import { resolveProxyConfig } from './proxy.js';
import { configSchema, type JailOptions, type PortcullisOptions } from './schema.js';
import { resolveSocketJail, resolveTcpListeners, tcpListenerSchema } from './tcp.js';
import type {
  HttpConfig,
  JailConfig,
  PortcullisConfig,
  ProxyConfig,
  SourceConfig,
  StoreConfig,
} from './types.js';
import { takeUnavailableSources, unavailableActions } from './unavailable.js';

/**
 * Aliases a file may expand. A configuration needs a handful; a "billion laughs" file (aliases of
 * aliases) needs millions, and is refused instead of exhausting memory.
 */
const MAX_ALIAS_COUNT = 100;

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

/** One line for a YAML parse error, without yaml's position suffix and API hints. */
function yamlReason(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return 'a configuration is one YAML document; this file has several (---)';
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

/** Validates YAML text; `name` is what error messages call the file. */
export function parseConfigText(text: string, name: string, options: LoadOptions = {}): PortcullisConfig {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const at = error.linePos?.[0];
        const where = at === undefined ? name : `${name}:${at.line}:${at.col}`;
        return `${where}: invalid YAML: ${yamlReason(error.code, error.message)}`;
      }),
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (error) {
    // yaml throws a ReferenceError for an alias bomb or an unknown alias, without a position.
    const message = (error as Error).message;
    const bomb = /alias count/i.test(message);
    const unresolved = /^Unresolved alias.*: (.*)$/.exec(message)?.[1];
    let offset: number | undefined;
    visit(document, {
      Alias(_key, node) {
        if (bomb || node.source === unresolved) {
          offset = node.range?.[0];
          return visit.BREAK;
        }
        return undefined;
      },
    });
    const at = offset === undefined ? undefined : lineCounter.linePos(offset);
    const where = at === undefined ? name : `${name}:${at.line}:${at.col}`;
    const reason = bomb
      ? `too many alias expansions (more than ${MAX_ALIAS_COUNT}: aliases of aliases multiply); write the values out`
      : unresolved !== undefined
        ? `unknown alias *${unresolved} (its &${unresolved} anchor must come first)`
        : (message.split('\n')[0] ?? 'cannot read the document');
    throw new ConfigError([`${where}: invalid YAML: ${reason}`], { cause: error });
  }
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
  const unavailable = [...takeUnavailableSources(value, name), ...unavailableActions(value, name)];
  const result = configSchema.safeParse(value, { reportInput: true });
  if (!result.success) {
    throw new ConfigError([
      ...unavailable,
      ...result.error.issues.map((issue) => formatIssue(issue, name, fromEnv)),
    ]);
  }
  return buildConfig(
    result.data,
    name,
    options.baseDir ?? process.cwd(),
    options.file ?? null,
    unavailable,
    options.env ?? process.env,
  );
}

function buildConfig(
  options: z.output<typeof configSchema>,
  name: string,
  baseDir: string,
  file: string | null,
  earlier: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): PortcullisConfig {
  const problems: string[] = [...earlier];
  const warnings: string[] = [];
  const defaults = options.defaults ?? {};
  const jails: JailConfig[] = [];
  const jailActions: { name: string; actions: readonly unknown[] | undefined }[] = [];
  const tcp = resolveTcpListeners(
    options.tcp,
    options.http?.trusted_proxies ?? DEFAULT_HTTP_CONFIG.trustedProxies,
    name,
    problems,
  );
  const tcpListeners = tcp.map((listener) => listener.name);
  const packets = resolvePacketWatchers(options.packets, name, problems);
  const packetWatchers = packets.map((watcher) => watcher.name);
  for (const [jailName, jailOptions] of Object.entries(options.jails ?? {})) {
    if (jailName === MANUAL_JAIL) {
      problems.push(`${name}: jails.${jailName}: "${MANUAL_JAIL}" is reserved for bans made by hand`);
      continue;
    }
    const own = jailOptions ?? {};
    jailActions.push({ name: jailName, actions: own.actions });
    const http = resolveHttpJail(jailName, own, defaults, {
      name,
      baseDir,
      formatIssue: (issue) => formatIssue(issue, name),
    });
    problems.push(...http.problems);
    if (http.httpFilter !== null) {
      // Slow regexes (the matching budget's soft limit): accepted, and said.
      const rule =
        typeof (own.filter ?? defaults.filter) === 'string' ? (own.filter ?? defaults.filter) : null;
      for (const [path, message] of fieldFilterWarnings(HTTP_FIELDS, http.httpFilter as FieldFilterSpec)) {
        const where =
          rule === null
            ? `filter.${path.join('.')}`
            : `filter: rule ${JSON.stringify(rule)}: ${path.join('.')}`;
        warnings.push(`${name}: jails.${jailName}.${where}: ${message}`);
      }
    }
    const socket = resolveSocketJail(jailName, own, defaults, { name, baseDir, listeners: tcpListeners });
    problems.push(...socket.problems);
    warnings.push(...socket.warnings);
    const packet = resolvePacketJail(jailName, own, defaults, { name, baseDir, watchers: packetWatchers });
    problems.push(...packet.problems);
    warnings.push(...packet.warnings);
    const merged = {
      ...defaults,
      ...(http.ruleSettings as JailOptions),
      ...(socket.ruleSettings as JailOptions),
      ...(packet.ruleSettings as JailOptions),
      ...own,
    };
    const log = resolveLogJail(jailName, merged, { name, baseDir });
    problems.push(...log.problems);
    jails.push({
      ...buildJail(jailName, merged, defaults),
      ...log.settings,
      httpFilter: http.httpFilter,
      rate: http.rate,
      ...(socket.socketFilter === null ? {} : { socketFilter: socket.socketFilter }),
      ...(packet.packetFilter === null ? {} : { packetFilter: packet.packetFilter }),
    });
  }
  if (defaults.rate !== undefined) {
    problems.push(`${name}: defaults.rate: a request rate belongs on one http jail, not in defaults`);
  }
  const actions = resolveActions(
    { presets: options.actions, defaults: defaults.actions, jails: jailActions },
    name,
    (issue) => formatIssue(issue, name),
  );
  problems.push(...actions.problems);
  for (const [i, jail] of jails.entries())
    jails[i] = { ...jail, actions: actions.byJail.get(jail.name) ?? [] };
  const http = buildHttp(options.http, baseDir, name, problems);
  const proxy =
    options.proxy === undefined ? undefined : buildProxy(options.proxy, http, baseDir, name, problems);
  const store = buildStore(options.store, baseDir, name, problems, file !== null);
  const admin =
    options.admin === undefined
      ? undefined
      : resolveAdmin(options.admin, { name, baseDir, env, problems, warnings });
  const control =
    options.control === undefined ? undefined : resolveControl(options.control, { name, baseDir, problems });
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    file,
    warnings: [...cidrWarnings(options, name), ...warnings],
    store,
    onStoreError: options.store?.on_store_error ?? DEFAULTS.onStoreError,
    dbPurgeAgeMs: parseDuration(options.store?.dbpurgeage ?? DEFAULTS.dbpurgeage),
    log: { level: options.log?.level ?? DEFAULTS.logLevel },
    jails,
    actions: actions.instances,
    defaultActions: actions.defaults,
    http,
    ...(proxy === undefined ? {} : { proxy }),
    ...(tcp.length === 0 ? {} : { tcp }),
    ...(packets.length === 0 ? {} : { packets }),
    ...(admin === undefined ? {} : { admin }),
    ...(control === undefined ? {} : { control }),
  });
}

/** `proxy:` in the programmatic form, resolved by the same function `createProxy()` uses. */
function buildProxy(
  proxy: NonNullable<z.output<typeof configSchema>['proxy']>,
  http: HttpConfig,
  baseDir: string,
  name: string,
  problems: string[],
): ProxyConfig {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const time = (value: string | number | undefined) =>
    value === undefined ? undefined : parseDuration(value);
  const listeners = Array.isArray(proxy.listen) ? proxy.listen : [proxy.listen];
  const deny = proxy.deny;
  const t = proxy.timeouts ?? {};
  const log = proxy.access_log;
  const own: string[] = [];
  const resolved = resolveProxyConfig(
    {
      listen: listeners.map((l) =>
        typeof l === 'string' ? l : { address: l.address, proxyProtocol: l.proxy_protocol, tls: l.tls },
      ),
      target: proxy.target,
      targets: proxy.targets,
      trustedProxies: proxy.trusted_proxies,
      deny:
        deny === undefined || deny === 'drop' || typeof deny === 'number'
          ? deny
          : { ...deny, page: deny.page === undefined ? undefined : at(deny.page) },
      headerTimeoutMs: time(t.header),
      requestTimeoutMs: time(t.request),
      bodyTimeoutMs: time(t.body),
      idleTimeoutMs: time(t.idle),
      keepAliveTimeoutMs: time(t.keep_alive),
      upstreamTimeoutMs: time(t.upstream),
      proxyProtocolTimeoutMs: time(t.proxy_protocol),
      shutdownTimeoutMs: time(t.shutdown),
      maxHeaderSize: proxy.max_header_size,
      maxHeaders: proxy.max_headers,
      maxConnectionsPerIp: proxy.max_connections_per_ip,
      maxSockets: proxy.max_sockets,
      maxUpstreamPerIp: proxy.max_upstream_per_ip,
      bodyBufferSize: proxy.body_buffer_size,
      targetDownMs: time(proxy.target_down_time),
      preserveHost: proxy.preserve_host,
      tls: proxy.tls === undefined ? null : { cert: at(proxy.tls.cert), key: at(proxy.tls.key) },
      accessLog:
        log === undefined
          ? null
          : { path: at(log.path), format: log.format, flushIntervalMs: time(log.flush_interval) },
    },
    http,
    own,
    { fileKeys: true },
  );
  problems.push(...own.map((problem) => `${name}: ${problem}`));
  return resolved;
}

function buildHttp(
  http: z.output<typeof configSchema>['http'],
  baseDir: string,
  name: string,
  problems: string[],
): HttpConfig {
  const deny = http?.deny;
  const page =
    deny?.page === undefined ? undefined : isAbsolute(deny.page) ? deny.page : resolve(baseDir, deny.page);
  const own: string[] = [];
  const response = resolveDenyResponse(
    deny === undefined ? undefined : { ...deny, page },
    DEFAULT_HTTP_CONFIG.deny,
    { where: 'http.deny', problems: own },
  );
  problems.push(...own.map((problem) => `${name}: ${problem}`));
  return {
    trustedProxies: http?.trusted_proxies ?? DEFAULT_HTTP_CONFIG.trustedProxies,
    forwardedHeader: http?.forwarded_header ?? DEFAULT_HTTP_CONFIG.forwardedHeader,
    deny: response,
  };
}

/**
 * Ranges written with host bits set (`10.1.2.3/8`): valid, and they mean the network, but the
 * writer may have meant one address. One line each, at the key where it is written.
 */
function cidrWarnings(options: z.output<typeof configSchema>, name: string): string[] {
  const lists: [string, readonly string[] | undefined][] = [
    ['defaults.ignoreip', options.defaults?.ignoreip],
    ...Object.entries(options.jails ?? {}).map(
      ([jail, settings]): [string, readonly string[] | undefined] => [
        `jails.${jail}.ignoreip`,
        settings?.ignoreip,
      ],
    ),
    ['http.trusted_proxies', options.http?.trusted_proxies],
    ['proxy.trusted_proxies', options.proxy?.trusted_proxies],
  ];
  const warnings: string[] = [];
  for (const [path, list] of lists) {
    list?.forEach((text, i) => {
      const checked = checkCidr(text);
      if (checked.ok && checked.warning !== undefined)
        warnings.push(`${name}: ${path}.${i}: ${checked.warning}`);
    });
  }
  return warnings;
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
          factor: increment.factor ?? DEFAULTS.bantimeIncrement.factor,
          multipliers: increment.multipliers ?? null,
          maxTimeMs: increment.maxtime === undefined ? null : parseDuration(increment.maxtime),
          rndTimeMs: parseDuration(increment.rndtime ?? DEFAULTS.bantimeIncrement.rndtime),
          overallJails: increment.overalljails ?? DEFAULTS.bantimeIncrement.overalljails,
        }
      : null,
    ignoreIp: merged.ignoreip ?? [...d.ignoreip],
    ignoreSelf: merged.ignoreself ?? d.ignoreself,
    dryRun: merged.dryrun ?? d.dryrun,
    ipv6Prefix: merged.ipv6_prefix ?? d.ipv6_prefix,
    actions: [], // resolved with every jail's in buildConfig
  };
}

function buildSource(source: JailOptions['source']): SourceConfig {
  if (source === undefined || source === 'api') return { kind: 'api' };
  if (source === 'http') return { kind: 'http' };
  // A bare `socket` names no listener: resolveSocketJail refuses it.
  if (source === 'socket') return { kind: 'socket', listener: '' };
  if ('socket' in source) return { kind: 'socket', listener: source.socket };
  if ('packets' in source) return { kind: 'packets', watcher: source.packets };
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
  if (issue.code === 'invalid_union' && !/\bgot\b/.test(issue.message)) {
    // A union without its own message: the alternative the value got furthest in (its problems
    // are not "wrong type" at its root) says what is wrong, at its own key path.
    const closest = issue.errors.find(
      (branch) =>
        branch.length > 0 &&
        branch.every(
          (inner) =>
            inner.path.length > 0 || (inner.code !== 'invalid_type' && inner.code !== 'invalid_value'),
        ),
    );
    if (closest !== undefined)
      return closest
        .map((inner) =>
          formatIssue({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue, name, fromEnv),
        )
        .join('\n');
  }
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
  'usedns',
  'max_line_length',
];
const KEYS_AT: Record<string, string[]> = {
  '': [
    '$schema',
    'store',
    'log',
    'http',
    'proxy',
    'tcp',
    'packets',
    'defaults',
    'jails',
    'actions',
    'control',
  ],
  control: ['socket', 'mode'],
  proxy: [
    'listen',
    'target',
    'targets',
    'trusted_proxies',
    'deny',
    'timeouts',
    'max_header_size',
    'max_headers',
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
  if (path.length === 2 && path[0] === 'tcp') return Object.keys(tcpListenerSchema.shape);
  if (path.length === 2 && path[0] === 'packets') return Object.keys(packetWatcherSchema.shape);
  const last = path[path.length - 1];
  if (last === 'bantime_increment') return KEYS_AT.bantime_increment as string[];
  return KEYS_AT[path.join('.')] ?? [];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export type { PortcullisOptions };
