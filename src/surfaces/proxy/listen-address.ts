import { ConfigError } from '../../core/errors.js';
import { parseIp } from '../../core/ip.js';

/** Where a listener binds. */
export interface ListenAddress {
  /** An address or host name; `undefined`: every interface (dual stack where the host allows). */
  host: string | undefined;
  port: number;
  /** IPv6 listeners do not take IPv4 too, so `0.0.0.0:8080` and `[::]:8080` can coexist (as in nginx). */
  ipv6Only: boolean;
}

/**
 * Parses `0.0.0.0:8080`, `127.0.0.1:0`, `[::]:8080`, `[::1]:0`, `localhost:8080`, `:8080` or
 * `8080`. Throws a {@link ConfigError} naming `where` for anything else.
 */
export function parseListenAddress(text: string, where = 'proxy.listen'): ListenAddress {
  const bad = () =>
    new ConfigError([
      `${where}: expected an address like "0.0.0.0:8080", "[::]:8080" or ":8080", got ${JSON.stringify(text)}`,
    ]);
  let host: string | undefined;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') throw bad();
    host = text.slice(1, close);
    if (parseIp(host) === null || host.indexOf(':') === -1) throw bad();
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon !== text.indexOf(':')) throw bad(); // an IPv6 address needs brackets
    host = colon <= 0 ? undefined : text.slice(0, colon);
    portText = colon === -1 ? text : text.slice(colon + 1);
    if (host !== undefined && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad();
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad();
  const port = Number(portText);
  if (port > 65_535) throw bad();
  return { host, port, ipv6Only: host !== undefined && host.indexOf(':') !== -1 };
}
