/** Every built-in default in one place (fail2ban's where it has one). */
export const DEFAULTS = {
  sqlitePath: './portcullis.db',
  redisPrefix: 'pc:',
  /** Next to the config file; only for a config read from a file. */
  redisOutbox: './portcullis-outbox.db',
  redisCommandTimeout: '1s',
  onStoreError: 'local',
  dbpurgeage: '1d',
  logLevel: 'info',
  jail: {
    enabled: true,
    maxretry: 5,
    findtime: '10m',
    bantime: '10m',
    ignoreip: ['127.0.0.0/8', '::1'],
    ignoreself: true,
    dryrun: false,
    ipv6_prefix: 64,
    /** log jails: bytes a line is cut to before matching. */
    max_line_length: 16_384,
  },
  http: {
    forwardedHeader: 'x-forwarded-for',
    denyStatus: 403,
    denyBody: 'Forbidden\n',
    /** Of `deny.body`; a `deny.page` is `text/html; charset=utf-8`. */
    denyContentType: 'text/plain; charset=utf-8',
  },
  /** The reverse proxy (`proxy:`); times in ms. */
  proxy: {
    headerTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    /** Between two reads of a request body (nginx's `client_body_timeout` is 60 s; 10 s is plenty on any link that still works). */
    bodyTimeoutMs: 10_000,
    idleTimeoutMs: 0,
    keepAliveTimeoutMs: 5_000,
    upstreamTimeoutMs: 60_000,
    proxyProtocolTimeoutMs: 5_000,
    shutdownTimeoutMs: 5_000,
    maxHeaderSize: 16_384,
    maxHeaders: 200,
    /**
     * 0: unlimited. 256: room for a large NAT (a browser opens at most 6 connections per host, so
     * ~40 busy browsers behind one address) while one address cannot hold thousands of sockets.
     */
    maxConnectionsPerIp: 256,
    maxSockets: 256,
    /** `maxUpstreamPerIp` when not set: this share of `maxSockets` (four clients fill the pool). */
    maxUpstreamShare: 0.25,
    /** Request bodies are read up to this many bytes before an upstream connection is taken. */
    bodyBufferSize: 65_536,
    targetDownMs: 5_000,
    preserveHost: true,
    /** Of a listener: whether it requires a PROXY protocol header. */
    proxyProtocol: false,
    accessLogFormat: 'combined',
    accessLogFlushIntervalMs: 1_000,
  },
  bantimeIncrement: {
    enabled: false,
    factor: 1,
    rndtime: 0,
    overalljails: false,
  },
} as const;

/** The jail name manual bans are recorded under; no configured jail may use it. */
export const MANUAL_JAIL = 'manual';
