import * as z from 'zod';
import { DURATION_PATTERN, parseDuration } from '../core/duration.js';
import { parseCidr } from '../core/ip.js';
import { RATE_PATTERN } from '../detection/filters/http/rate.js';
import { logFilterSchema } from '../detection/filters/regex/filter-definition.js';

/**
 * The configuration file's schema, the one definition behind validation, the TypeScript types
 * and the JSON Schema (`schema/portcullis.schema.json`). Keys follow fail2ban where it has a name
 * for the thing (`maxretry`, `findtime`, `bantime`, `ignoreip`).
 */

const durationRe = new RegExp(DURATION_PATTERN);
const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));

/** `90s`, `10m`, `1h30m`, `1d`, `2w`, a number of seconds, or `-1` (permanent). */
export const durationSchema = z
  .union(
    [
      z
        .string()
        .regex(durationRe, { error: (issue) => `expected a duration like "10m", got ${show(issue.input)}` }),
      z.number().refine((n) => n === -1 || (Number.isFinite(n) && n >= 0), {
        error: (issue) => `expected a duration like "10m", got ${show(issue.input)}`,
      }),
    ],
    { error: (issue) => `expected a duration like "10m", got ${show(issue.input)}` },
  )
  .describe('A duration: "90s", "10m", "1h30m", "1d", "2w", seconds as a number, or -1 for never.');

/** An IP address or CIDR range: `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`, `::ffff:10.0.0.0/104`. */
export const cidrSchema = z
  .string({ error: (issue) => `expected an IP address or CIDR range, got ${show(issue.input)}` })
  .refine((value) => parseCidr(value) !== null, {
    error: (issue) => `expected an IP address or CIDR range like "10.0.0.0/8", got ${show(issue.input)}`,
  });

const positiveInt = (what: string) =>
  z
    .number({ error: (issue) => `expected ${what}, got ${show(issue.input)}` })
    .int({ error: (issue) => `expected ${what}, got ${show(issue.input)}` })
    .min(1, { error: (issue) => `expected ${what}, got ${show(issue.input)}` });

export const banTimeIncrementSchema = z
  .strictObject({
    /** Escalate the ban time of repeat offenders. Default false. */
    enabled: z.boolean().optional().describe('Escalate the ban time of repeat offenders. Default false.'),
    /** Multiplies the doubling formula `bantime * factor * 2^(n)` for the n-th repeat. Default 1. */
    factor: z
      .number()
      .positive()
      .optional()
      .describe('For repeat n (1, 2, ...): bantime * factor * 2^min(n, 20). Default 1.'),
    /** Explicit multipliers instead of the formula: bantime * multipliers[min(n, len-1)]. */
    multipliers: z
      .array(z.number().positive())
      .min(1)
      .optional()
      .describe('Instead of the formula: ban n (0 = first) lasts bantime * multipliers[min(n, length-1)].'),
    /** Upper bound of an escalated ban. Default: none. */
    maxtime: durationSchema.optional().describe('Upper bound of an escalated ban time.'),
    /** Adds up to this much random time, so a bot cannot learn the exact release. Default 0. */
    rndtime: durationSchema
      .optional()
      .describe('Adds a random 0..rndtime so the release time cannot be predicted.'),
    /** Count earlier bans from every jail, not only this one. Default false. */
    overalljails: z.boolean().optional().describe('Count earlier bans from every jail, not only this one.'),
  })
  .describe('fail2ban bantime.increment: longer bans for clients banned before (within dbpurgeage).');

const logSourceSchema = z.strictObject({
  log: z.union([z.string(), z.array(z.string()).min(1)]).describe('A file, a glob, or a list of them.'),
  start: z
    .enum(['end', 'beginning'])
    .optional()
    .describe(
      'Where to start reading a file that has no saved position: "end" (default) reads only new lines, "beginning" the whole file.',
    ),
});
const commandSourceSchema = z.strictObject({
  command: z.array(z.string()).min(1).describe('A command whose output is followed, as an argument array.'),
});

export const sourceSchema = z
  .union([z.enum(['api', 'http', 'socket']), logSourceSchema, commandSourceSchema], {
    error: (issue) =>
      `expected "api", "http", "socket", { log: FILE | [FILES] } or { command: [ARGS] }, got ${show(issue.input)}`,
  })
  .describe('Where the jail gets events. "api" (default): only report() from the library.');

/** Every per-jail setting; each may also appear under `defaults`. */
export const jailSettingsShape = {
  enabled: z.boolean().optional().describe('Default true.'),
  source: sourceSchema.optional(),
  filter: z
    .union([z.string(), logFilterSchema, z.record(z.string(), z.unknown())])
    .optional()
    .describe('A bundled or file rule name, or an inline filter.'),
  mode: z
    .string()
    .optional()
    .describe('log jails: the filter\'s mode, e.g. "aggressive". Default the filter\'s own.'),
  datepattern: z
    .string()
    .optional()
    .describe(
      'log jails: strftime-style date pattern (e.g. "%Y-%m-%d %H:%M:%S") instead of detection; "{NONE}": no dates.',
    ),
  logtimezone: z
    .string()
    .optional()
    .describe(
      'log jails: zone of times written without one: "UTC", "+0100", "Europe/Berlin". Default the host\'s zone.',
    ),
  max_line_length: z
    .number()
    .int()
    .min(256)
    .max(1_048_576)
    .optional()
    .describe('log jails: longer lines are cut to this many bytes before matching. Default 16384.'),
  maxretry: positiveInt('a whole number of failures, at least 1')
    .optional()
    .describe('Failures within findtime that cause a ban. Default 5.'),
  findtime: durationSchema.optional().describe('The window failures are counted in. Default 10m.'),
  bantime: durationSchema.optional().describe('How long a ban lasts; -1 forever. Default 10m.'),
  bantime_increment: banTimeIncrementSchema.optional(),
  ignoreip: z
    .array(cidrSchema)
    .optional()
    .describe('Addresses and ranges never banned. Default 127.0.0.0/8, ::1.'),
  ignoreself: z.boolean().optional().describe("Never ban this host's own addresses. Default true."),
  dryrun: z
    .boolean()
    .optional()
    .describe('Record "would ban" decisions without enforcing them. Default false.'),
  ipv6_prefix: z
    .number()
    .int()
    .min(1)
    .max(128)
    .optional()
    .describe('IPv6 clients are counted and banned per network of this length. Default 64.'),
  actions: z
    .array(z.union([z.string(), z.record(z.string(), z.unknown())]))
    .optional()
    .describe('What to do beyond the inline deny when a ban starts or ends.'),
  rate: z
    .string({ error: (issue) => `expected a rate like "100/10s", got ${show(issue.input)}` })
    .regex(new RegExp(RATE_PATTERN), {
      error: (issue) => `expected a rate like "100/10s", got ${show(issue.input)}`,
    })
    .optional()
    .describe(
      'http jails only: a request rate like "100/10s". Each client exceeding it (per instance) gets 429 and one failure counted in this jail per window; with maxretry 1 the first excess bans.',
    ),
};

export const jailSchema = z.strictObject(jailSettingsShape);
export const defaultsSchema = z.strictObject(jailSettingsShape);

const redisObjectSchema = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, {
      error: (issue) => `expected a redis:// or rediss:// URL, got ${show(issue.input)}`,
    })
    .optional(),
  sentinels: z
    .array(z.strictObject({ host: z.string(), port: z.number().int().min(1).max(65535) }))
    .min(1)
    .optional()
    .describe('Sentinel addresses; needs `name`.'),
  name: z.string().optional().describe('Sentinel master group name.'),
  cluster: z.array(z.string()).min(1).optional().describe('Cluster seed node URLs.'),
  username: z.string().optional(),
  password: z.string().optional(),
  db: z.number().int().min(0).optional(),
  tls: z.boolean().optional(),
  prefix: z.string().optional().describe('Key prefix. Default "pc:".'),
  command_timeout: durationSchema
    .optional()
    .describe('A command slower than this counts as an outage. Default 1s.'),
  /**
   * A local SQLite file where decisions made while Redis is unreachable wait, so a process killed
   * during an outage writes them at its next start. Relative to the config file. Default
   * `portcullis-outbox.db` next to the config file (in memory for a config object); `null`: in memory.
   */
  outbox: z
    .union([z.string().min(1), z.null()])
    .optional()
    .describe(
      'Local SQLite file where decisions wait while Redis is unreachable (survives kill -9). Relative to the config file. Default "portcullis-outbox.db" next to it; null keeps them in memory.',
    ),
});

export const storeSchema = z
  .strictObject({
    sqlite: z
      .union([z.string(), z.strictObject({ path: z.string() })])
      .optional()
      .describe('The embedded default: a SQLite file. Relative paths are relative to the config file.'),
    redis: z
      .union([z.string(), redisObjectSchema])
      .optional()
      .describe('Shared state for several instances.'),
    memory: z.literal(true).optional().describe('No persistence at all; for tests and experiments.'),
    on_store_error: z
      .enum(['local', 'deny', 'stop'])
      .optional()
      .describe(
        'While the store is unreachable: "local" (default) enforces known bans, counts and bans locally, writes back on return; "stop" enforces known bans but counts nothing; "deny" refuses every client not in ignoreip.',
      ),
    dbpurgeage: durationSchema
      .optional()
      .describe('How long ban history is kept for bantime_increment. Default 1d.'),
  })
  .refine((store) => [store.sqlite, store.redis, store.memory].filter((v) => v !== undefined).length <= 1, {
    error: 'choose one of sqlite, redis or memory',
  });

/** Settings shared by the HTTP surfaces (Express middleware, reverse proxy). */
export const httpSchema = z
  .strictObject({
    trusted_proxies: z
      .array(cidrSchema)
      .optional()
      .describe(
        'Peers whose forwarding header names the client (CIDRs). Default none: the socket peer is the client.',
      ),
    forwarded_header: z
      .enum(['x-forwarded-for', 'forwarded', 'x-real-ip'])
      .optional()
      .describe('The header trusted proxies name the client in. Default x-forwarded-for.'),
    deny: z
      .strictObject({
        status: z
          .number()
          .int()
          .min(200)
          .max(599)
          .optional()
          .describe('Status sent to a banned client. Default 403.'),
        body: z.string().optional().describe('Plain-text body sent to a banned client. Default "Forbidden".'),
        page: z
          .string()
          .optional()
          .describe('An HTML file sent to a banned client instead of body; relative to the config file.'),
      })
      .optional()
      .describe('The response a banned client gets, with Retry-After while the ban has an end.'),
  })
  .describe('HTTP surfaces: who the client is and what a banned client gets.');

/** `host:port`, `[v6]:port` or a bare port (every interface). */
const LISTEN_RE = /^(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)?:)?(\d{1,5})$/;
const listenAddressSchema = z
  .string({ error: (issue) => `expected an address like "0.0.0.0:8080", got ${show(issue.input)}` })
  .refine((text) => Number(LISTEN_RE.exec(text)?.[1] ?? 65_536) <= 65_535, {
    error: (issue) =>
      `expected an address like "0.0.0.0:8080", "[::]:8080" or ":8080", got ${show(issue.input)}`,
  });
const targetUrlSchema = z
  .string({ error: (issue) => `expected a URL like "http://127.0.0.1:3000", got ${show(issue.input)}` })
  .refine((text) => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol), {
    error: (issue) =>
      `expected an http:// or https:// URL like "http://127.0.0.1:3000", got ${show(issue.input)}`,
  });
const proxyListenerSchema = z.union(
  [
    listenAddressSchema,
    z.strictObject({
      address: listenAddressSchema.describe(
        '"0.0.0.0:8080", "[::]:8080" (IPv6 only) or ":8080" (every interface).',
      ),
      proxy_protocol: z
        .boolean()
        .optional()
        .describe(
          'Require a PROXY protocol v1/v2 header on every connection (from a load balancer); others are closed. Default false.',
        ),
      tls: z
        .boolean()
        .optional()
        .describe('Terminate TLS with proxy.tls. Default: true when proxy.tls is set.'),
    }),
  ],
  {
    error: (issue) =>
      `expected an address like "0.0.0.0:8080" or { address, proxy_protocol, tls }, got ${show(issue.input)}`,
  },
);

/** The reverse proxy started by `portcullis run`. */
export const proxySchema = z
  .strictObject({
    listen: z
      .union([proxyListenerSchema, z.array(proxyListenerSchema).min(1)])
      .describe('Where to listen: one address or a list ("0.0.0.0:8080", { address, proxy_protocol, tls }).'),
    target: targetUrlSchema.optional().describe('The upstream application, e.g. http://127.0.0.1:3000.'),
    targets: z
      .array(targetUrlSchema)
      .min(1)
      .optional()
      .describe(
        'Several upstreams, used in turn; one that refuses connections is skipped for target_down_time.',
      ),
    trusted_proxies: z
      .array(cidrSchema)
      .optional()
      .describe(
        'Peers whose X-Forwarded-For (http.forwarded_header) names the client, and whose chain is extended. Default http.trusted_proxies.',
      ),
    deny: z
      .union([
        z.literal('drop'),
        z.number().int().min(200).max(599),
        z.strictObject({
          status: z.number().int().min(200).max(599).optional().describe('Default http.deny.status (403).'),
          body: z.string().optional().describe('Plain-text body. Default http.deny.body.'),
          page: z.string().optional().describe('An HTML file instead of body; relative to the config file.'),
        }),
      ])
      .optional()
      .describe(
        '"drop": a banned client\'s connection is closed at accept, before a byte is read; a status (403) or { status, body, page }: answered. Default http.deny.',
      ),
    timeouts: z
      .strictObject({
        header: durationSchema
          .optional()
          .describe("Receiving a request's headers (slowloris): 408 after. Default 10s."),
        request: durationSchema
          .optional()
          .describe('Receiving a whole request, body included: 408 after. Default 60s.'),
        idle: durationSchema
          .optional()
          .describe(
            'A client connection with no traffic either way is closed; 0: never. Default 0 (the other timeouts bound every phase).',
          ),
        keep_alive: durationSchema
          .optional()
          .describe('An idle keep-alive client connection is closed. Default 5s.'),
        upstream: durationSchema
          .optional()
          .describe('Connecting to, or waiting between reads from, the upstream: 504 after. Default 60s.'),
        proxy_protocol: durationSchema
          .optional()
          .describe('Receiving the PROXY protocol header. Default 5s.'),
        shutdown: durationSchema
          .optional()
          .describe(
            'On stop, requests in flight get this long before their connections are closed. Default 5s.',
          ),
      })
      .optional(),
    max_header_size: z
      .number()
      .int()
      .min(1024)
      .max(1_048_576)
      .optional()
      .describe('Largest request head in bytes; larger gets 431. Default 16384.'),
    max_connections_per_ip: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Concurrent connections one client address may hold; more are closed at accept. Default unlimited.',
      ),
    max_sockets: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Connections to each upstream (kept alive and reused). Default 256.'),
    target_down_time: durationSchema
      .optional()
      .describe('How long a target that refused a connection is skipped (when others remain). Default 5s.'),
    preserve_host: z
      .boolean()
      .optional()
      .describe("Send the client's Host header upstream (true) or the target's host (false). Default true."),
    tls: z
      .strictObject({
        cert: z
          .string()
          .describe('PEM certificate chain file; relative to the config file. Re-read on SIGHUP.'),
        key: z.string().describe('PEM private key file; relative to the config file. Re-read on SIGHUP.'),
      })
      .optional()
      .describe('TLS termination for the listeners (all, unless a listener says tls: false).'),
    access_log: z
      .strictObject({
        path: z.string().describe('The file; relative to the config file. Reopened on SIGUSR1 (logrotate).'),
        format: z
          .enum(['combined', 'json'])
          .optional()
          .describe('"combined" (Apache/nginx) or "json" (one object per line). Default combined.'),
        flush_interval: durationSchema
          .optional()
          .describe('Lines are buffered and written at least this often. Default 1s.'),
      })
      .optional()
      .describe(
        'An access log of every proxied request (log jails can read it with filter portcullis-access).',
      ),
  })
  .describe('The reverse proxy: listeners, upstreams, deny, timeouts, TLS and access log.');

export const logSchema = z.strictObject({
  level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .optional()
    .describe('Default info.'),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    store: storeSchema.optional(),
    log: logSchema.optional(),
    http: httpSchema.optional(),
    proxy: proxySchema.optional(),
    defaults: defaultsSchema.optional(),
    jails: z
      .record(
        z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
          error: (issue) => `jail names are letters, digits, "-", "_" and ".", got ${show(issue.input)}`,
        }),
        jailSchema.nullable(),
      )
      .optional(),
  })
  .describe('portcullis configuration');

/** The configuration as written by a user (YAML or an object). */
export type PortcullisOptions = z.input<typeof configSchema>;
export type JailOptions = z.input<typeof jailSchema>;

export function durationMs(value: string | number): number {
  return parseDuration(value);
}
