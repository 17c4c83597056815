import { defineFieldCatalogue } from './catalogue.js';

/**
 * How a guarded TCP connection ended: the client closed it first (`client-close`), the upstream
 * did (`upstream-close`), the client reset it or its socket failed (`reset`), nothing moved for
 * `idle_timeout` (`timeout`), the upstream could not be reached or failed (`upstream-error`), or
 * the guard refused or cut it (`refused`: over `max_connections`/`max_connections_per_ip`, or
 * closed because its client was banned while connected).
 */
export type ConnectionEnd =
  | 'client-close'
  | 'upstream-close'
  | 'reset'
  | 'timeout'
  | 'upstream-error'
  | 'refused';

/** Every {@link ConnectionEnd}, in the order the docs list them. */
export const CONNECTION_ENDS: readonly ConnectionEnd[] = [
  'client-close',
  'upstream-close',
  'reset',
  'timeout',
  'upstream-error',
  'refused',
];

/**
 * A TCP guard's connection event, as socket filters read it: `open` when a connection is
 * accepted, `close` when it is over. Fields a kind of event does not have are `undefined`
 * (an `open` has no duration, no byte counts and no `end`).
 */
export interface SocketFilterEvent {
  readonly event: 'open' | 'close';
  /** The client's canonical address (the socket peer, or the one a trusted PROXY header named). */
  readonly ip?: string | undefined;
  /** The listener's name in the config. */
  readonly listener: string;
  /** The local port the client connected to. */
  readonly dport: number;
  /** From accept to close, ms (`close` only). */
  readonly durationMs?: number | undefined;
  /** Bytes received from the client (`close` only). */
  readonly bytesIn?: number | undefined;
  /** Bytes sent to the client (`close` only). */
  readonly bytesOut?: number | undefined;
  /** True when the connection closed before the client sent any data (`close` only). */
  readonly noData?: boolean | undefined;
  /** The client's connections open at that moment, this one included. */
  readonly concurrent?: number | undefined;
  /** How it ended (`close` only). */
  readonly end?: ConnectionEnd | undefined;
  /** The TLS server name the client asked for; `undefined` without TLS or SNI. */
  readonly sni?: string | undefined;
}

const PORT = 'a port like 22, a list like [80, 443], a range like "8000-8999" or { gte: 1024 }';
const COUNT = 'a count like 0, a list like [0, 1], a range like "1-10" or { gte: 100 }';

/**
 * The fields of socket (TCP guard) events, as `filter:` names them:
 *
 * ```yaml
 * filter: { event: close, bytes_in: 0 }                 # connected, sent nothing
 * filter: { event: close, duration: { lt: "2s" }, end: [client-close, reset] }
 * filter: { event: open, concurrent: { gt: 20 } }
 * filter: { event: close, not: { end: client-close } }
 * ```
 */
export const SOCKET_FIELDS = defineFieldCatalogue<SocketFilterEvent>('socket', {
  event: {
    type: 'keyword',
    values: ['open', 'close'],
    description: '`open` when a connection is accepted, `close` when it is over.',
    get: (e) => e.event,
  },
  ip: {
    type: 'keyword',
    expected: 'an address like "192.0.2.7", a list of them, or { match: "<regex>" }',
    description:
      'The client address, canonical ("192.0.2.7", "2001:db8::1"); exact, a list, or { match }. (ignoreip is the way to exempt clients.)',
    get: (e) => e.ip,
  },
  listener: {
    type: 'keyword',
    description: 'The listener the connection came in on, by its name in the config.',
    get: (e) => e.listener,
  },
  dport: {
    type: 'number',
    integer: true,
    min: 0,
    max: 65_535,
    expected: PORT,
    description: 'The local port the client connected to.',
    get: (e) => e.dport,
  },
  duration: {
    type: 'duration',
    description: 'How long the connection lasted (close events).',
    get: (e) => e.durationMs,
  },
  bytes_in: {
    type: 'number',
    integer: true,
    min: 0,
    expected: COUNT,
    description: 'Bytes received from the client (close events).',
    get: (e) => e.bytesIn,
  },
  bytes_out: {
    type: 'number',
    integer: true,
    min: 0,
    expected: COUNT,
    description: 'Bytes sent to the client (close events).',
    get: (e) => e.bytesOut,
  },
  no_data: {
    type: 'boolean',
    description: 'True when the connection closed before the client sent anything (close events).',
    get: (e) => e.noData,
  },
  concurrent: {
    type: 'number',
    integer: true,
    min: 0,
    expected: COUNT,
    description: "The client's connections open at that moment, this one included.",
    get: (e) => e.concurrent,
  },
  end: {
    type: 'keyword',
    values: CONNECTION_ENDS,
    description:
      'How the connection ended (close events): client-close, upstream-close, reset, timeout, upstream-error or refused.',
    get: (e) => e.end,
  },
  sni: {
    type: 'text',
    description: "Regex on the TLS server name the client asked for ('' without TLS or SNI).",
    get: (e) => e.sni,
  },
});
