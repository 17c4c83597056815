import * as z from 'zod';
import { DURATION_PATTERN, parseDuration } from '../core/duration.js';
import { parseCidr } from '../core/ip.js';
import { RATE_PATTERN } from '../detection/filters/http/rate.js';

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
    .union([z.string(), z.record(z.string(), z.unknown())])
    .optional()
    .describe('A bundled or file rule name, or an inline filter.'),
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
