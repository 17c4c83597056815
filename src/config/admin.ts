import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';
import * as z from 'zod';
import { DURATION_PATTERN, parseDuration } from '../core/duration.js';
import { checkCidr, parseHostPort } from '../core/ip.js';

/**
 * The admin listener (`admin:`): HTTP API, Server-Sent Events, Prometheus metrics and the live
 * dashboard. Off unless the section is present. The token is read once here (at load and at each
 * reload); only its SHA-256 digest is kept, so neither a log line nor a dump of the configuration
 * can show it.
 */

/** Every default of `admin:`, in one place. */
export const ADMIN_DEFAULTS = {
  listen: '127.0.0.1:9191',
  metrics: true,
  processMetrics: true,
  dashboard: true,
  allowRemote: false,
  /** A shorter token is a configuration error. */
  minTokenLength: 16,
  /** Wrong tokens from one client within findtime before it is refused for bantime. */
  authMaxRetry: 10,
  authFindTime: '10m',
  authBanTime: '10m',
} as const;

const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const durationRe = new RegExp(DURATION_PATTERN);
const positiveDuration = z
  .union([z.string().regex(durationRe), z.number().positive()], {
    error: (issue) => `expected a duration longer than 0 like "10m", got ${show(issue.input)}`,
  })
  .refine((value) => safeDuration(value) > 0, {
    error: (issue) => `expected a duration longer than 0 like "10m", got ${show(issue.input)}`,
  });

function safeDuration(value: string | number): number {
  try {
    return parseDuration(value);
  } catch {
    return -1;
  }
}

export const adminSchema = z
  .strictObject({
    /** `host:port` of the admin listener. Loopback unless `allow_remote`. Default 127.0.0.1:9191. */
    listen: z
      .string()
      .optional()
      .describe(
        `host:port of the admin listener; a loopback address unless allow_remote. Default ${ADMIN_DEFAULTS.listen}.`,
      ),
    /** Allow a listen address other than loopback (put TLS in front of it). Default false. */
    allow_remote: z
      .boolean()
      .optional()
      .describe('Allow a non-loopback listen address (put TLS in front of it). Default false.'),
    /** A file holding the bearer token (16 characters or more), relative to the config file. One of token_file, token_env. */
    token_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A file holding the bearer token (at least 16 characters; surrounding whitespace ignored), relative to the config file. One of token_file or token_env.',
      ),
    /** An environment variable holding the bearer token. One of token_file, token_env. */
    token_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
        error: (issue) => `expected an environment variable name, got ${show(issue.input)}`,
      })
      .optional()
      .describe('An environment variable holding the bearer token. One of token_file or token_env.'),
    /** Serve Prometheus metrics at /metrics (same token). Default true. */
    metrics: z
      .boolean()
      .optional()
      .describe(`Serve Prometheus metrics at /metrics (same token). Default ${ADMIN_DEFAULTS.metrics}.`),
    /** Include Node's process metrics (CPU, memory, event loop) in /metrics. Default true. */
    process_metrics: z
      .boolean()
      .optional()
      .describe(
        `Include Node process metrics (CPU, memory, event loop lag) in /metrics. Default ${ADMIN_DEFAULTS.processMetrics}.`,
      ),
    /** Serve the live dashboard at / (the page asks for the token). Default true. */
    dashboard: z
      .boolean()
      .optional()
      .describe(
        `Serve the live dashboard at / (it asks for the token). Default ${ADMIN_DEFAULTS.dashboard}.`,
      ),
    /** Peers (a TLS terminator) whose X-Forwarded-For names the client for failed-login counting. Default none. */
    trusted_proxies: z
      .array(
        z.string().refine((text) => checkCidr(text).ok, {
          error: (issue) => `expected an IP address or CIDR range, got ${show(issue.input)}`,
        }),
      )
      .optional()
      .describe(
        'Peers (e.g. a TLS terminator) whose X-Forwarded-For names the client, for counting failed logins. Default none.',
      ),
    /** Wrong tokens per client before it is refused (like a jail). */
    auth_failures: z
      .strictObject({
        /** Wrong tokens within findtime that get the client refused. Default 10. */
        maxretry: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe(
            `Wrong tokens within findtime that get a client refused. Default ${ADMIN_DEFAULTS.authMaxRetry}.`,
          ),
        /** The window, a duration. Default 10m. */
        findtime: positiveDuration.optional().describe(`The window. Default ${ADMIN_DEFAULTS.authFindTime}.`),
        /** How long the client is refused (429), even with the right token. Default 10m. */
        bantime: positiveDuration
          .optional()
          .describe(
            `How long it is refused (429), even with the right token. Default ${ADMIN_DEFAULTS.authBanTime}.`,
          ),
      })
      .optional()
      .describe('Brute-force protection of the token: wrong tokens are counted per client IP like a jail.'),
  })
  .describe(
    'The admin listener: HTTP API (/v1), Server-Sent Events, Prometheus /metrics and the dashboard. Off without this section.',
  );

export type AdminOptions = z.input<typeof adminSchema>;

/**
 * The bearer token, kept as a SHA-256 digest. `matches()` compares digests (equal lengths) with
 * `crypto.timingSafeEqual`, so neither the token's length nor its prefix leaks through timing.
 * Printing it (JSON, `util.inspect`, a pino log line) shows `[redacted]`.
 */
export class AdminToken {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = digest(token);
  }

  matches(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.#digest);
  }

  /** Whether `other` holds the same token (a reload builds a new object for an unchanged one). */
  sameAs(other: AdminToken): boolean {
    return other === this || timingSafeEqual(other.#digest, this.#digest);
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'AdminToken [redacted]';
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** `admin:`, resolved. Times are milliseconds. */
export interface AdminConfig {
  /** As written (`127.0.0.1:9191`). */
  readonly listen: string;
  readonly host: string;
  readonly port: number;
  readonly allowRemote: boolean;
  readonly token: AdminToken;
  /** Where the token comes from, for log lines: `file /etc/portcullis/token`, `env PORTCULLIS_TOKEN`. */
  readonly tokenSource: string;
  readonly metrics: boolean;
  readonly processMetrics: boolean;
  readonly dashboard: boolean;
  readonly trustedProxies: readonly string[];
  readonly authFailures: {
    readonly maxRetry: number;
    readonly findTimeMs: number;
    readonly banTimeMs: number;
  };
}

export interface ResolveAdminContext {
  /** What errors call the file. */
  name: string;
  baseDir: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Problems (config errors) are pushed here, one line each naming the key. */
  problems: string[];
  warnings: string[];
}

/** Resolves `admin:` (already shape-checked by {@link adminSchema}); `undefined` when any key is wrong. */
export function resolveAdmin(
  options: z.output<typeof adminSchema>,
  context: ResolveAdminContext,
): AdminConfig | undefined {
  const { name, problems } = context;
  const before = problems.length;
  const listen = options.listen ?? ADMIN_DEFAULTS.listen;
  const hostPort = parseHostPort(listen);
  const allowRemote = options.allow_remote ?? ADMIN_DEFAULTS.allowRemote;
  if (hostPort === null) {
    problems.push(
      `${name}: admin.listen: expected an address like "127.0.0.1:9191" or "[::1]:9191", got ${show(listen)}`,
    );
  } else if (!allowRemote && !isLoopback(hostPort.host)) {
    problems.push(
      `${name}: admin.listen: ${show(listen)} is not a loopback address; the admin API controls every ban, so it binds to 127.0.0.1 or ::1 unless admin.allow_remote is true`,
    );
  }
  const token = readToken(options, context);
  if (problems.length > before || hostPort === null || token === undefined) return undefined;
  const auth = options.auth_failures ?? {};
  return {
    listen,
    host: hostPort.host ?? '::',
    port: hostPort.port,
    allowRemote,
    token: new AdminToken(token.value),
    tokenSource: token.source,
    metrics: options.metrics ?? ADMIN_DEFAULTS.metrics,
    processMetrics: options.process_metrics ?? ADMIN_DEFAULTS.processMetrics,
    dashboard: options.dashboard ?? ADMIN_DEFAULTS.dashboard,
    trustedProxies: options.trusted_proxies ?? [],
    authFailures: {
      maxRetry: auth.maxretry ?? ADMIN_DEFAULTS.authMaxRetry,
      findTimeMs: parseDuration(auth.findtime ?? ADMIN_DEFAULTS.authFindTime),
      banTimeMs: parseDuration(auth.bantime ?? ADMIN_DEFAULTS.authBanTime),
    },
  };
}

function isLoopback(host: string | undefined): boolean {
  if (host === undefined) return false; // `:9191` is every interface
  if (host === 'localhost') return true;
  const checked = checkCidr(host);
  if (!checked.ok) return false;
  return checked.cidr.family === 4 ? checked.cidr.text.startsWith('127.') : checked.cidr.text === '::1';
}

/** The token's text (never logged) and where it came from; problems name the key, never the value. */
function readToken(
  options: z.output<typeof adminSchema>,
  { name, baseDir, env, problems, warnings }: ResolveAdminContext,
): { value: string; source: string } | undefined {
  const { token_file: file, token_env: variable } = options;
  if ((file === undefined) === (variable === undefined)) {
    problems.push(
      `${name}: admin: set exactly one of token_file or token_env (the bearer token every request but /healthz and /readyz needs)`,
    );
    return undefined;
  }
  let value: string;
  let key: string;
  let source: string;
  if (file !== undefined) {
    const path = isAbsolute(file) ? file : resolve(baseDir, file);
    key = 'admin.token_file';
    source = `file ${path}`;
    try {
      value = readFileSync(path, 'utf8').trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code);
      problems.push(`${name}: ${key}: cannot read ${path}: ${why}`);
      return undefined;
    }
    try {
      // Anyone on the host could read a world-readable token and control every ban.
      if ((statSync(path).mode & 0o004) !== 0)
        warnings.push(`${name}: ${key}: ${path} is readable by every user; chmod 600 it`);
    } catch {
      // Read a moment ago; a vanished file is the next reload's problem.
    }
  } else {
    key = 'admin.token_env';
    source = `env ${variable}`;
    const raw = env[variable as string];
    if (raw === undefined || raw.trim() === '') {
      problems.push(`${name}: ${key}: the environment variable ${variable} is not set`);
      return undefined;
    }
    value = raw.trim();
  }
  if (value.length < ADMIN_DEFAULTS.minTokenLength) {
    problems.push(
      `${name}: ${key}: the token is ${value.length} characters long; use at least ${ADMIN_DEFAULTS.minTokenLength} (e.g. \`openssl rand -hex 32\`)`,
    );
    return undefined;
  }
  return { value, source };
}
