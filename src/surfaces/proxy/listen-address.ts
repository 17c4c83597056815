import { badListenAddress } from '../../config/proxy.js';
import { ConfigError } from '../../core/errors.js';
import { parseHostPort } from '../../core/ip.js';

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
 * `8080` ({@link parseHostPort}). Throws a {@link ConfigError} naming `where` for anything else.
 */
export function parseListenAddress(text: string, where = 'proxy.listen'): ListenAddress {
  const parsed = parseHostPort(text);
  if (parsed === null) throw new ConfigError([`${where}: ${badListenAddress(text)}`]);
  const { host, port } = parsed;
  return { host, port, ipv6Only: host !== undefined && host.indexOf(':') !== -1 };
}
