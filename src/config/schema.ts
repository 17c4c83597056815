import * as z from 'zod';
import { DURATION_PATTERN, formatDuration, PERMANENT, parseDuration } from '../core/duration.js';
import { checkCidr, parseHostPort } from '../core/ip.js';
import { RATE_PATTERN } from '../detection/filters/http/rate.js';
import { logFilterSchemaOf } from '../detection/filters/regex/filter-schema.js';
import { adminSchema } from './admin.js';
import { controlSchema } from './control.js';
import { DEFAULTS } from './defaults.js';
import { packetsSchema, packetsSourceSchema } from './packets.js';
import { badListenAddress, badTargetUrl, PROXY_LIMITS, type ProxyLimitKey } from './proxy.js';
import { socketSourceSchema, tcpSchema } from './tcp.js';

/**
 * The configuration file's schema, the one definition behind validation, the TypeScript types
 * and the JSON Schema (`schema/portcullis.schema.json`). Keys follow fail2ban where it has a name
 * for the thing (`maxretry`, `findtime`, `bantime`, `ignoreip`).
 */

const durationRe = new RegExp(DURATION_PATTERN);
const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const ms = (value: number): string => formatDuration(value);
const D = DEFAULTS;
const P = DEFAULTS.proxy;

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

/** Which durations a key takes beyond the syntax: whether 0 and -1 mean something there. */
interface DurationRule {
  /** What 0 means; absent: 0 is refused. */
  zero?: string;
  /** What -1 means; absent: -1 is refused (it means "permanent" only for bantime). */
  permanent?: string;
  /** Why 0 is refused, told to the user. */
  whyNotZero?: string;
}

/**
 * A duration that must mean something for its key: `findtime: 0` or `bantime: 0` would silently
 * disable a jail, `findtime: -1` is no window at all. The message says what the key accepts and why.
 */
function duration(rule: DurationRule = {}) {
  const accepts = [
    'a duration longer than 0',
    ...(rule.zero === undefined ? [] : [`0 (${rule.zero})`]),
    ...(rule.permanent === undefined ? [] : [`-1 (${rule.permanent})`]),
  ].join(', or ');
  return durationSchema.refine(
    (value) => {
      const length = lengthOf(value);
      // Not a duration at all: the union has said so already.
      if (length === undefined) return true;
      if (length === PERMANENT) return rule.permanent !== undefined;
      return length > 0 || rule.zero !== undefined;
    },
    {
      error: (issue) => {
        const permanent = lengthOf(issue.input) === PERMANENT;
        const why = permanent ? '-1 (permanent) is only meaningful for bantime' : rule.whyNotZero;
        return `expected ${accepts}, got ${show(issue.input)}${why === undefined ? '' : `: ${why}`}`;
      },
    },
  );
}

/** Milliseconds, or `undefined` for what is not a duration. */
function lengthOf(value: unknown): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  try {
    return parseDuration(value);
  } catch {
    return undefined;
  }
}

/** A proxy time, bounded by {@link PROXY_LIMITS} (the same bounds `createProxy()` checks). */
function proxyDuration(key: ProxyLimitKey) {
  const limit: { min: number; zero?: string } = PROXY_LIMITS[key];
  return duration(limit.min === 0 ? { zero: limit.zero ?? 'off' } : {});
}

/** A proxy count or size, bounded by {@link PROXY_LIMITS}. */
function proxyNumber(key: ProxyLimitKey) {
  const limit: { min: number; max?: number } = PROXY_LIMITS[key];
  const number = z.number().int().min(limit.min);
  return limit.max === undefined ? number : number.max(limit.max);
}

/** An IP address or CIDR range: `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`, `::ffff:10.0.0.0/104`. */
export const cidrSchema = z
  .string({ error: (issue) => `expected an IP address or CIDR range, got ${show(issue.input)}` })
  .check((ctx) => {
    const result = checkCidr(ctx.value);
    if (result.ok) return;
    ctx.issues.push({
      code: 'custom',
      input: ctx.value,
      message:
        result.reason ?? `expected an IP address or CIDR range like "10.0.0.0/8", got ${show(ctx.value)}`,
    });
  });

const positiveInt = (what: string) =>
  z
    .number({ error: (issue) => `expected ${what}, got ${show(issue.input)}` })
    .int({ error: (issue) => `expected ${what}, got ${show(issue.input)}` })
    .min(1, { error: (issue) => `expected ${what}, got ${show(issue.input)}` });

export const banTimeIncrementSchema = z
  .strictObject({
    /** Escalate the ban time of repeat offenders. Default false. */
    enabled: z
      .boolean()
      .optional()
      .describe(`Escalate the ban time of repeat offenders. Default ${D.bantimeIncrement.enabled}.`),
    /** Repeat n (1, 2, ...) lasts `bantime * factor * 2^min(n, 20)`; a number above 0. Default 1. */
    factor: z
      .number()
      .positive()
      .optional()
      .describe(
        `For repeat n (1, 2, ...): bantime * factor * 2^min(n, 20); a number above 0. Default ${D.bantimeIncrement.factor}.`,
      ),
    /** Instead of the formula, ban n (0 = first) lasts `bantime * multipliers[min(n, length-1)]`; numbers above 0. Default none. */
    multipliers: z
      .array(z.number().positive())
      .min(1)
      .optional()
      .describe(
        'Instead of the formula: ban n (0 = first) lasts bantime * multipliers[min(n, length-1)]. Default none.',
      ),
    /** Upper bound of an escalated ban, a duration longer than 0. Default none (no bound). */
    maxtime: duration({
      whyNotZero: 'every escalated ban would end at once; leave maxtime out for no upper bound',
    })
      .optional()
      .describe('Upper bound of an escalated ban time, a duration longer than 0. Default none.'),
    /** Adds a random 0..rndtime, so a bot cannot learn the exact release; a duration, 0 for none. Default 0. */
    rndtime: duration({ zero: 'none' })
      .optional()
      .describe(
        `Adds a random 0..rndtime so the release time cannot be predicted. Default ${ms(D.bantimeIncrement.rndtime)}.`,
      ),
    /** Count earlier bans from every jail, not only this one. Default false. */
    overalljails: z
      .boolean()
      .optional()
      .describe(
        `Count earlier bans from every jail, not only this one. Default ${D.bantimeIncrement.overalljails}.`,
      ),
  })
  .describe(
    'fail2ban bantime.increment: longer bans for clients banned before (within store.dbpurgeage). Keys merge with defaults.bantime_increment.',
  );

const logSourceSchema = z.strictObject({
  /** A file, a glob (`/var/log/nginx/*.log`), or a list of them. Required. */
  log: z.union([z.string(), z.array(z.string()).min(1)]).describe('A file, a glob, or a list of them.'),
  /** Where a file with no saved position is read from: `end` (new lines only) or `beginning`. Default end. */
  start: z
    .enum(['end', 'beginning'])
    .optional()
    .describe(
      'Where to start reading a file that has no saved position: "end" (default) reads only new lines, "beginning" the whole file.',
    ),
});
const commandSourceSchema = z.strictObject({
  /** A command whose output is followed, as an argument array (`[journalctl, -f, -o, json]`); never run through a shell. Required. */
  command: z
    .array(z.string())
    .min(1)
    .describe('A command whose output is followed, as an argument array; never run through a shell.'),
});

export const sourceSchema = z
  .union(
    [
      z.enum(['api', 'http', 'socket']),
      logSourceSchema,
      commandSourceSchema,
      socketSourceSchema,
      packetsSourceSchema,
    ],
    {
      error: (issue) =>
        `expected "api", "http", { socket: LISTENER }, { packets: WATCHER }, { log: FILE | [FILES] } or { command: [ARGS] }, got ${show(issue.input)}`,
    },
  )
  .describe(
    'Where the jail gets events: "api" (default, only report() from the library), "http" (middleware and proxy), { socket: LISTENER } (a tcp: listener\'s connections), { packets: WATCHER } (a packets: watcher\'s events), { log: FILE | [FILES] } or { command: [ARGS] }.',
  );

/** Every per-jail setting; each may also appear under `defaults`. */
export const jailSettingsShape = {
  /** Run the jail; a disabled jail is validated but not run. Default true. */
  enabled: z
    .boolean()
    .optional()
    .describe(`Run the jail (a disabled one is still validated). Default ${D.jail.enabled}.`),
  /** Where events come from: `api` (only `report()`), `http`, `{ log: FILE }`, `{ command: [ARGS] }`. Default api. */
  source: sourceSchema.optional(),
  /** A bundled rule name (`sshd`, `scanners`), a rule file, or an inline filter. Default none. */
  filter: z
    .union([z.string(), logFilterSchemaOf(z), z.record(z.string(), z.unknown())])
    .optional()
    .describe('A bundled or file rule name, or an inline filter. Default none.'),
  /** log jails: the filter's mode, e.g. `aggressive`. Default the filter's own. */
  mode: z
    .string()
    .optional()
    .describe('log jails: the filter\'s mode, e.g. "aggressive". Default the filter\'s own.'),
  /** log jails: strftime-style date pattern (`%Y-%m-%d %H:%M:%S`) instead of detection; `{NONE}`: no dates. Default: detected. */
  datepattern: z
    .string()
    .optional()
    .describe(
      'log jails: strftime-style date pattern (e.g. "%Y-%m-%d %H:%M:%S") instead of detection; "{NONE}": no dates. Default detected.',
    ),
  /** log jails: zone of times written without one (`UTC`, `+0100`, `Europe/Berlin`). Default the host's zone. */
  logtimezone: z
    .string()
    .optional()
    .describe(
      'log jails: zone of times written without one: "UTC", "+0100", "Europe/Berlin". Default the host\'s zone.',
    ),
  /** log jails: a DNS name where the filter expects an address: `no` (missed), `warn`, `yes` (resolved in the background). Default no. */
  usedns: z
    .enum(['no', 'warn', 'yes'])
    .optional()
    .describe(
      'log jails: a DNS name in place of an address: "no" (the line is missed), "warn" or "yes" (looked up in the background, cached; warn logs each name once). Default no.',
    ),
  /** log jails: longer lines are cut to this many bytes (256 to 1 048 576) before matching. Default 16384. */
  max_line_length: z
    .number()
    .int()
    .min(256)
    .max(1_048_576)
    .optional()
    .describe(
      `log jails: longer lines are cut to this many bytes (256 to 1048576) before matching. Default ${D.jail.max_line_length}.`,
    ),
  /** Failures within findtime that cause a ban, a whole number of at least 1. Default 5. */
  maxretry: positiveInt('a whole number of failures, at least 1')
    .optional()
    .describe(`Failures within findtime that cause a ban, at least 1. Default ${D.jail.maxretry}.`),
  /** The window failures are counted in, a duration longer than 0. Default 10m. */
  findtime: duration({ whyNotZero: 'a window of 0 holds no failures, so the jail would never ban' })
    .optional()
    .describe(`The window failures are counted in, a duration longer than 0. Default ${D.jail.findtime}.`),
  /** How long a ban lasts, a duration longer than 0, or -1 for permanent. Default 10m. */
  bantime: duration({
    permanent: 'permanent',
    whyNotZero: 'a ban of 0 ends as it starts, so the jail would never block anyone',
  })
    .optional()
    .describe(`How long a ban lasts, longer than 0; -1 forever. Default ${D.jail.bantime}.`),
  /** Longer bans for repeat offenders (fail2ban's `bantime.increment`). Default off. */
  bantime_increment: banTimeIncrementSchema.optional(),
  /** Addresses and CIDR ranges never counted nor banned (IPv4, IPv6, mapped IPv4). Default 127.0.0.0/8, ::1. */
  ignoreip: z
    .array(cidrSchema)
    .optional()
    .describe(`Addresses and CIDR ranges never counted nor banned. Default ${D.jail.ignoreip.join(', ')}.`),
  /** Never ban this host's own addresses. Default true. */
  ignoreself: z
    .boolean()
    .optional()
    .describe(`Never ban this host's own addresses. Default ${D.jail.ignoreself}.`),
  /** Record "would ban" decisions without enforcing them. Default false. */
  dryrun: z
    .boolean()
    .optional()
    .describe(`Record "would ban" decisions without enforcing them. Default ${D.jail.dryrun}.`),
  /** IPv6 clients are counted and banned per network of this many bits (1 to 128). Default 64. */
  ipv6_prefix: z
    .number()
    .int()
    .min(1)
    .max(128)
    .optional()
    .describe(
      `IPv6 clients are counted and banned per network of this many bits (1 to 128). Default ${D.jail.ipv6_prefix}.`,
    ),
  /** What to do beyond the inline deny when a ban starts or ends: `nftables`, `{ nftables: { ports: [22] } }`, or a name from the top-level `actions:`. Each kind's options are validated in `config/actions.ts`. Default []. */
  actions: z
    .array(z.union([z.string(), z.record(z.string(), z.unknown())]))
    .optional()
    .describe(
      'What to do beyond the inline deny when a ban starts or ends: an action kind (nftables), { kind: { options } }, or a name defined under the top-level actions:. Default [].',
    ),
  /** http jails only: a request rate like `100/10s`; a client over it gets 429 and one failure per window. Default none. */
  rate: z
    .string({ error: (issue) => `expected a rate like "100/10s", got ${show(issue.input)}` })
    .regex(new RegExp(RATE_PATTERN), {
      error: (issue) => `expected a rate like "100/10s", got ${show(issue.input)}`,
    })
    .optional()
    .describe(
      'http jails only: a request rate like "100/10s". Each client exceeding it (across instances with a Redis store, else per instance) gets 429 and one failure counted in this jail per window; with maxretry 1 the first excess bans. Default none.',
    ),
};

export const jailSchema = z.strictObject(jailSettingsShape);
export const defaultsSchema = z.strictObject(jailSettingsShape);

const redisObjectSchema = z.strictObject({
  /** `redis://[user:password@]host:6379[/db]` or `rediss://` (TLS). One of url, sentinels, cluster. */
  url: z
    .string()
    .regex(/^rediss?:\/\//, {
      error: (issue) => `expected a redis:// or rediss:// URL, got ${show(issue.input)}`,
    })
    .optional()
    .describe('redis://host:6379[/db] or rediss:// (TLS). One of url, sentinels or cluster.'),
  /** Sentinel addresses (`{ host, port }`); needs `name`. One of url, sentinels, cluster. */
  sentinels: z
    .array(
      z.strictObject({
        /** The Sentinel's host name or address. */
        host: z.string().describe("The Sentinel's host name or address."),
        /** Its port, 1 to 65535 (Sentinel's usual is 26379). */
        port: z.number().int().min(1).max(65535).describe('Its port, 1 to 65535 (usually 26379).'),
      }),
    )
    .min(1)
    .optional()
    .describe('Sentinel addresses; needs `name`.'),
  /** The Sentinel master group name; required with sentinels. */
  name: z.string().optional().describe('Sentinel master group name; required with sentinels.'),
  /** Cluster seed node URLs. One of url, sentinels, cluster. */
  cluster: z.array(z.string()).min(1).optional().describe('Cluster seed node URLs.'),
  /** ACL user name. Default none. */
  username: z.string().optional().describe('ACL user name. Default none.'),
  /** Password. Default none. */
  password: z.string().optional().describe('Password. Default none.'),
  /** Database number, 0 or more. Default the URL's, else 0. */
  db: z.number().int().min(0).optional().describe("Database number. Default the URL's, else 0."),
  /** Connect with TLS. Default false (true for rediss:// URLs). */
  tls: z.boolean().optional().describe('Connect with TLS. Default false (true for rediss://).'),
  /** Prefix of every key portcullis writes. Default "pc:". */
  prefix: z.string().optional().describe(`Key prefix. Default "${D.redisPrefix}".`),
  /** A command slower than this counts as an outage (see on_store_error); a duration longer than 0. Default 1s. */
  command_timeout: duration()
    .optional()
    .describe(
      `A command slower than this counts as an outage; longer than 0. Default ${D.redisCommandTimeout}.`,
    ),
  /**
   * A local SQLite file where decisions made while Redis is unreachable wait, so a process killed
   * during an outage writes them at its next start. Relative to the config file. Default
   * `portcullis-outbox.db` next to the config file (in memory for a config object); `null`: in memory.
   */
  outbox: z
    .union([z.string().min(1), z.null()])
    .optional()
    .describe(
      `Local SQLite file where decisions wait while Redis is unreachable (survives kill -9). Relative to the config file. Default "${D.redisOutbox}" next to it; null keeps them in memory.`,
    ),
});

export const storeSchema = z
  .strictObject({
    /** A SQLite file (or `{ path }`), relative to the config file; `:memory:` for none. Default ./portcullis.db. */
    sqlite: z
      .union([
        z.string(),
        z.strictObject({
          /** The file, relative to the config file. */
          path: z.string().describe('The file, relative to the config file.'),
        }),
      ])
      .optional()
      .describe(
        `The embedded default: a SQLite file. Relative paths are relative to the config file. Default ${D.sqlitePath}.`,
      ),
    /** Shared state for several instances: a URL, or `{ url | sentinels + name | cluster, ... }`. Default none. */
    redis: z
      .union([z.string(), redisObjectSchema])
      .optional()
      .describe('Shared state for several instances: a URL or { url | sentinels + name | cluster, ... }.'),
    /** `true`: nothing persists (tests, experiments). Default: SQLite. */
    memory: z.literal(true).optional().describe('No persistence at all; for tests and experiments.'),
    /** While the store is unreachable: `local`, `stop` or `deny`. Default local. */
    on_store_error: z
      .enum(['local', 'deny', 'stop'])
      .optional()
      .describe(
        `While the store is unreachable: "local" enforces known bans, counts and bans locally, writes back on return; "stop" enforces known bans but counts nothing; "deny" refuses every client not in ignoreip. Default ${D.onStoreError}.`,
      ),
    /** How long ban history counts for bantime_increment, a duration longer than 0. Default 1d. */
    dbpurgeage: duration({
      whyNotZero: 'ban history would be forgotten at once, so bantime_increment would never escalate',
    })
      .optional()
      .describe(
        `How long ban history is kept for bantime_increment, longer than 0. Default ${D.dbpurgeage}.`,
      ),
  })
  .refine((store) => [store.sqlite, store.redis, store.memory].filter((v) => v !== undefined).length <= 1, {
    error: 'choose one of sqlite, redis or memory',
  });

/** Settings shared by the HTTP surfaces (Express middleware, reverse proxy). */
export const httpSchema = z
  .strictObject({
    /** Peers (IPs, CIDRs) whose forwarding header names the client. Default none: the socket peer is the client. */
    trusted_proxies: z
      .array(cidrSchema)
      .optional()
      .describe(
        'Peers whose forwarding header names the client (CIDRs). Default none: the socket peer is the client.',
      ),
    /** The header trusted proxies name the client in: x-forwarded-for, forwarded or x-real-ip. Default x-forwarded-for. */
    forwarded_header: z
      .enum(['x-forwarded-for', 'forwarded', 'x-real-ip'])
      .optional()
      .describe(`The header trusted proxies name the client in. Default ${D.http.forwardedHeader}.`),
    /** The response a banned client gets (with Retry-After while the ban has an end). Default 403 "Forbidden". */
    deny: z
      .strictObject({
        /** Status sent to a banned client, 200 to 599. Default 403. */
        status: z
          .number()
          .int()
          .min(200)
          .max(599)
          .optional()
          .describe(`Status sent to a banned client, 200 to 599. Default ${D.http.denyStatus}.`),
        /** Plain-text body sent to a banned client. Default "Forbidden". */
        body: z
          .string()
          .optional()
          .describe(`Plain-text body sent to a banned client. Default ${JSON.stringify(D.http.denyBody)}.`),
        /** An HTML file sent instead of body, relative to the config file. Default none. */
        page: z
          .string()
          .optional()
          .describe('An HTML file sent to a banned client instead of body; relative to the config file.'),
      })
      .optional()
      .describe('The response a banned client gets, with Retry-After while the ban has an end.'),
  })
  .describe('HTTP surfaces: who the client is and what a banned client gets.');

/** `host:port`, `[v6]:port` or a bare port (every interface); the host an IP address or host name. */
const listenAddressSchema = z
  .string({ error: (issue) => badListenAddress(issue.input) })
  .refine((text) => parseHostPort(text) !== null, { error: (issue) => badListenAddress(issue.input) });
const targetUrlSchema = z
  .string({ error: (issue) => badTargetUrl(issue.input) as string })
  .refine((text) => badTargetUrl(text) === undefined, {
    error: (issue) => badTargetUrl(issue.input) as string,
  });
const proxyListenerSchema = z.union(
  [
    listenAddressSchema,
    z.strictObject({
      /** `0.0.0.0:8080`, `[::]:8080` (IPv6 only) or `:8080` (every interface); port 0 to 65535. Required. */
      address: listenAddressSchema.describe(
        '"0.0.0.0:8080", "[::]:8080" (IPv6 only) or ":8080" (every interface); port 0 to 65535.',
      ),
      /** Require a PROXY protocol v1/v2 header on every connection (from a load balancer). Default false. */
      proxy_protocol: z
        .boolean()
        .optional()
        .describe(
          `Require a PROXY protocol v1/v2 header on every connection (from a load balancer); others are closed. Default ${P.proxyProtocol}.`,
        ),
      /** Terminate TLS with proxy.tls. Default: true when proxy.tls is set. */
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
    /** Where to listen: one address or a list (`"0.0.0.0:8080"`, `{ address, proxy_protocol, tls }`). Required. */
    listen: z
      .union([proxyListenerSchema, z.array(proxyListenerSchema).min(1)], {
        error: (issue) =>
          `expected an address like "0.0.0.0:8080", { address, proxy_protocol, tls }, or a list of them, got ${show(issue.input)}`,
      })
      .describe('Where to listen: one address or a list ("0.0.0.0:8080", { address, proxy_protocol, tls }).'),
    /** The upstream application, `http://127.0.0.1:3000`. One of target or targets is required. */
    target: targetUrlSchema.optional().describe('The upstream application, e.g. http://127.0.0.1:3000.'),
    /** Several upstreams, used in turn. One of target or targets is required. */
    targets: z
      .array(targetUrlSchema)
      .min(1)
      .optional()
      .describe(
        'Several upstreams, used in turn; one that refuses connections is skipped for target_down_time.',
      ),
    /** Peers whose forwarding header names the client, and whose chain is extended. Default http.trusted_proxies. */
    trusted_proxies: z
      .array(cidrSchema)
      .optional()
      .describe(
        'Peers whose X-Forwarded-For (http.forwarded_header) names the client, and whose chain is extended. Default http.trusted_proxies.',
      ),
    /** `drop` (close at accept), a status (403), or `{ status, body, page }`. Default http.deny. */
    deny: z
      .union([
        z.literal('drop'),
        z.number().int().min(200).max(599),
        z.strictObject({
          /** 200 to 599. Default http.deny.status (403). */
          status: z
            .number()
            .int()
            .min(200)
            .max(599)
            .optional()
            .describe(`200 to 599. Default http.deny.status (${D.http.denyStatus}).`),
          /** Plain-text body. Default http.deny.body. */
          body: z.string().optional().describe('Plain-text body. Default http.deny.body.'),
          /** An HTML file instead of body, relative to the config file. Default none. */
          page: z.string().optional().describe('An HTML file instead of body; relative to the config file.'),
        }),
      ])
      .optional()
      .describe(
        '"drop": a banned client\'s connection is closed at accept, before a byte is read; a status (403) or { status, body, page }: answered. Default http.deny.',
      ),
    /** Time limits of each phase of a request. */
    timeouts: z
      .strictObject({
        /** Receiving a request's headers (slowloris), 408 after; longer than 0. Default 10s. */
        header: proxyDuration('headerTimeoutMs')
          .optional()
          .describe(
            `Receiving a request's headers (slowloris): 408 after; longer than 0. Default ${ms(P.headerTimeoutMs)}.`,
          ),
        /** Receiving a whole request, body included, 408 after; at least header. Default 60s. */
        request: proxyDuration('requestTimeoutMs')
          .optional()
          .describe(
            `Receiving a whole request, body included: 408 after; at least timeouts.header. Default ${ms(P.requestTimeoutMs)}.`,
          ),
        /** Between two reads of a request body (client_body_timeout), 408 after; longer than 0. Default 10s. */
        body: proxyDuration('bodyTimeoutMs')
          .optional()
          .describe(
            `Between two reads of a request body (nginx's client_body_timeout): 408 after, logged and judged; longer than 0. Default ${ms(P.bodyTimeoutMs)}.`,
          ),
        /** A client connection with no traffic either way is closed; 0: never. Default 0. */
        idle: proxyDuration('idleTimeoutMs')
          .optional()
          .describe(
            `A client connection with no traffic either way is closed; 0: never. Default ${ms(P.idleTimeoutMs)} (the other timeouts bound every phase).`,
          ),
        /** An idle keep-alive client connection is closed; longer than 0. Default 5s. */
        keep_alive: proxyDuration('keepAliveTimeoutMs')
          .optional()
          .describe(
            `An idle keep-alive client connection is closed; longer than 0. Default ${ms(P.keepAliveTimeoutMs)}.`,
          ),
        /** Connecting to, or waiting between reads from, the upstream, 504 after; longer than 0. Default 60s. */
        upstream: proxyDuration('upstreamTimeoutMs')
          .optional()
          .describe(
            `Connecting to, or waiting between reads from, the upstream: 504 after; longer than 0. Default ${ms(P.upstreamTimeoutMs)}.`,
          ),
        /** Receiving the PROXY protocol header; longer than 0. Default 5s. */
        proxy_protocol: proxyDuration('proxyProtocolTimeoutMs')
          .optional()
          .describe(
            `Receiving the PROXY protocol header; longer than 0. Default ${ms(P.proxyProtocolTimeoutMs)}.`,
          ),
        /** On stop, requests in flight get this long before their connections are closed; 0: none. Default 5s. */
        shutdown: proxyDuration('shutdownTimeoutMs')
          .optional()
          .describe(
            `On stop, requests in flight get this long before their connections are closed; 0: close at once. Default ${ms(P.shutdownTimeoutMs)}.`,
          ),
      })
      .optional()
      .describe('Time limits of each phase of a request.'),
    /** Largest request head in bytes (1024 to 1048576); larger gets 431. Default 16384. */
    max_header_size: proxyNumber('maxHeaderSize')
      .optional()
      .describe(
        `Largest request head in bytes (1024 to 1048576); larger gets 431. Default ${P.maxHeaderSize}.`,
      ),
    /** Request header fields accepted (1 to 1000); more gets 431 (Node keeps only 1000 for the upstream). Default 200. */
    max_headers: proxyNumber('maxHeaders')
      .optional()
      .describe(`Request header fields accepted (1 to 1000); more gets 431. Default ${P.maxHeaders}.`),
    /** Concurrent connections one client address may hold; more are closed at accept; 0: unlimited. Default 256. */
    max_connections_per_ip: proxyNumber('maxConnectionsPerIp')
      .optional()
      .describe(
        `Concurrent connections one client address may hold; more are closed at accept; 0: unlimited. Default ${P.maxConnectionsPerIp}.`,
      ),
    /** Connections to each upstream (kept alive and reused), at least 1. Default 256. */
    max_sockets: proxyNumber('maxSockets')
      .optional()
      .describe(`Connections to each upstream (kept alive and reused), at least 1. Default ${P.maxSockets}.`),
    /** Requests one client may have at the upstreams at once; 503 past it; at least 1. Default max_sockets / 4. */
    max_upstream_per_ip: proxyNumber('maxUpstreamPerIp')
      .optional()
      .describe(
        'Requests one client (after trusted proxies) may have at the upstreams at once; more are answered 503 with Retry-After, so no client takes the pool; at least 1. Default a quarter of max_sockets (64).',
      ),
    /** Request body bytes read before an upstream connection is taken; 0: stream at once. Default 65536. */
    body_buffer_size: proxyNumber('bodyBufferSize')
      .optional()
      .describe(
        `Request body bytes read before an upstream connection is taken (a slow upload holds none until then); the rest streams; 0: stream at once. Default ${P.bodyBufferSize}.`,
      ),
    /** How long a target that refused a connection is skipped (when others remain); 0: never. Default 5s. */
    target_down_time: proxyDuration('targetDownMs')
      .optional()
      .describe(
        `How long a target that refused a connection is skipped (when others remain); 0: never skipped. Default ${ms(P.targetDownMs)}.`,
      ),
    /** Send the client's Host header upstream (true) or the target's host (false). Default true. */
    preserve_host: z
      .boolean()
      .optional()
      .describe(
        `Send the client's Host header upstream (true) or the target's host (false). Default ${P.preserveHost}.`,
      ),
    /** TLS termination for the listeners (all, unless a listener says tls: false). Default none. */
    tls: z
      .strictObject({
        /** PEM certificate chain file, relative to the config file; re-read on SIGHUP. Required. */
        cert: z
          .string()
          .describe('PEM certificate chain file; relative to the config file. Re-read on SIGHUP.'),
        /** PEM private key file, relative to the config file; re-read on SIGHUP. Required. */
        key: z.string().describe('PEM private key file; relative to the config file. Re-read on SIGHUP.'),
      })
      .optional()
      .describe('TLS termination for the listeners (all, unless a listener says tls: false).'),
    /** An access log of every proxied request. Default none. */
    access_log: z
      .strictObject({
        /** The file, relative to the config file; reopened on SIGUSR1 (logrotate). Required. */
        path: z.string().describe('The file; relative to the config file. Reopened on SIGUSR1 (logrotate).'),
        /** `combined` (Apache/nginx) or `json` (one object per line). Default combined. */
        format: z
          .enum(['combined', 'json'])
          .optional()
          .describe(
            `"combined" (Apache/nginx) or "json" (one object per line). Default ${P.accessLogFormat}.`,
          ),
        /** Lines are buffered and written at least this often; longer than 0. Default 1s. */
        flush_interval: proxyDuration('accessLogFlushIntervalMs')
          .optional()
          .describe(
            `Lines are buffered and written at least this often; longer than 0. Default ${ms(P.accessLogFlushIntervalMs)}.`,
          ),
      })
      .optional()
      .describe(
        'An access log of every proxied request (log jails can read it with filter portcullis-access).',
      ),
  })
  .describe('The reverse proxy: listeners, upstreams, deny, timeouts, TLS and access log.');

export const logSchema = z.strictObject({
  /** Least severe level logged: trace, debug, info, warn, error, fatal or silent. Default info. */
  level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .optional()
    .describe(`Least severe level logged. Default ${D.logLevel}.`),
});

export const configSchema = z
  .strictObject({
    /** The JSON Schema this file follows, for editors; ignored by portcullis. */
    $schema: z.string().optional().describe('The JSON Schema for editors; ignored by portcullis.'),
    /** Where bans, ban history and log positions are kept. Default a SQLite file, ./portcullis.db. */
    store: storeSchema
      .optional()
      .describe('Where bans, ban history and log positions are kept. Default SQLite.'),
    /** portcullis's own log (JSON on stdout). */
    log: logSchema.optional().describe("portcullis's own log (JSON lines on stdout)."),
    /** HTTP surfaces: who the client is and what a banned client gets. */
    http: httpSchema.optional(),
    /** The reverse proxy `portcullis run` starts. Default none. */
    proxy: proxySchema.optional(),
    /** TCP guard listeners by name (`ssh: { listen: "0.0.0.0:2222", target: "127.0.0.1:22" }`). Default none. */
    tcp: tcpSchema.optional(),
    /** Packet watchers (libpcap) by name (`edge: { interface: eth0 }`). Default none. */
    packets: packetsSchema.optional(),
    /** Settings every jail inherits; a jail's own value replaces them. */
    defaults: defaultsSchema
      .optional()
      .describe("Settings every jail inherits; a jail's own value replaces them."),
    /** The jails by name (letters, digits, "-", "_", "."); `name: {}` is a jail with every default. */
    jails: z
      .record(
        z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
          error: (issue) => `jail names are letters, digits, "-", "_" and ".", got ${show(issue.input)}`,
        }),
        jailSchema.nullable(),
      )
      .optional()
      .describe('The jails by name; `name: {}` is a jail with every default.'),
    /** The admin listener: HTTP API, SSE, Prometheus metrics, dashboard. Default none (off). */
    admin: adminSchema.optional(),
    /** The control socket (`portcullis status`, `ban`, `stop`, ...); `false` turns it off. Default on. */
    control: controlSchema.optional(),
    /** Named action presets: `ssh-fw: { nftables: { ports: [22] } }`, listed as `actions: [ssh-fw]`. */
    actions: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        'Named action presets, e.g. ssh-fw: { nftables: { ports: [22] } }, used as actions: [ssh-fw].',
      ),
  })
  .describe('portcullis configuration');

/** The configuration as written by a user (YAML or an object). */
export type PortcullisOptions = z.input<typeof configSchema>;
export type JailOptions = z.input<typeof jailSchema>;

export function durationMs(value: string | number): number {
  return parseDuration(value);
}
