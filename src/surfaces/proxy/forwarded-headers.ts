import type { IncomingHttpHeaders } from 'node:http';

/**
 * Sets the forwarding headers the upstream reads, on the request's own header object (as
 * http-proxy's `xfwd` does; http jails then see the headers as forwarded).
 *
 * - From a trusted peer (`trusted_proxies`), the chain is kept and extended: `X-Forwarded-For`
 *   gets the peer appended; `X-Forwarded-Proto`/`-Host` and `Forwarded` are kept when present.
 * - From anyone else, whatever was sent is replaced: `X-Forwarded-For` is the peer alone,
 *   `X-Forwarded-Proto` our scheme, `X-Forwarded-Host` the `Host` header; `Forwarded` is removed.
 *
 * `X-Real-IP` is always the client portcullis judged (`null`: removed).
 *
 * The forwarding headers (and `Host`) are then made the first headers of the request once it has
 * more than {@link REORDER_OVER} of them: http-proxy-3 copies the headers in order, and an
 * upstream that keeps only the first N (Node keeps 1,000 pairs, `maxHeadersCount`) would
 * otherwise drop the very headers that name the client when a client sends a thousand of its own.
 *
 * @param peer the connection's peer (the PROXY protocol client when the listener takes it).
 */
export function setForwardedHeaders(
  headers: IncomingHttpHeaders,
  peer: string,
  trusted: boolean,
  client: string | null,
  encrypted: boolean,
): void {
  const proto = encrypted ? 'https' : 'http';
  if (trusted) {
    const chain = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = chain === undefined || chain === '' ? peer : `${chain}, ${peer}`;
    if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = proto;
    if (headers['x-forwarded-host'] === undefined && headers.host !== undefined) {
      headers['x-forwarded-host'] = headers.host;
    }
  } else {
    headers['x-forwarded-for'] = peer;
    headers['x-forwarded-proto'] = proto;
    if (headers.host !== undefined) headers['x-forwarded-host'] = headers.host;
    else delete headers['x-forwarded-host'];
    if (headers.forwarded !== undefined) delete headers.forwarded;
    if (headers['x-forwarded-port'] !== undefined) delete headers['x-forwarded-port'];
  }
  if (client !== null) headers['x-real-ip'] = client;
  else delete headers['x-real-ip'];
  if (hasMoreKeysThan(headers, REORDER_OVER)) putFirst(headers, FORWARDING);
}

/**
 * Past this many header names the forwarding headers are moved to the front. Below it no
 * upstream drops any (Apache, the strictest, refuses more than 100 fields rather than dropping),
 * and the common request pays nothing.
 */
export const REORDER_OVER = 64;

/** What names the client and the site to the upstream. */
const FORWARDING = [
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
] as const;

function hasMoreKeysThan(headers: IncomingHttpHeaders, limit: number): boolean {
  let n = 0;
  for (const _ in headers) if (++n > limit) return true;
  return false;
}

/**
 * Reorders `headers` in place so that `names` (those present) come first, the others after in
 * their order. Moving a key to the end is the only reordering an object allows: every other key
 * is deleted and set again.
 */
function putFirst(headers: IncomingHttpHeaders, names: readonly string[]): void {
  const first = new Set(names);
  for (const name of Object.keys(headers)) {
    if (first.has(name)) continue;
    const value = headers[name];
    delete headers[name];
    headers[name] = value;
  }
}

/**
 * Removes the hop-by-hop headers of a request going upstream: every header `Connection` names,
 * `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer` (and `Upgrade` unless upgrading).
 * `Connection` itself stays: the client's response depends on it; `forwardTo()` (passes.ts)
 * replaces it upstream (a client's `Connection: close` would close the pooled upstream connection).
 */
export function removeHopByHop(headers: IncomingHttpHeaders, upgrade: boolean): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    if (connection.indexOf(',') !== -1 || !isStandardToken(connection)) {
      for (const token of connection.split(',')) {
        const name = token.trim().toLowerCase();
        if (
          name !== '' &&
          name !== 'upgrade' &&
          name !== 'close' &&
          name !== 'keep-alive' &&
          name !== 'host'
        ) {
          delete headers[name];
        }
      }
    }
  }
  if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  if (headers['proxy-connection'] !== undefined) delete headers['proxy-connection'];
  if (headers.te !== undefined) delete headers.te;
  if (headers.trailer !== undefined) delete headers.trailer;
  if (!upgrade && headers.upgrade !== undefined) delete headers.upgrade;
}

function isStandardToken(value: string): boolean {
  const lower = value.length <= 10 ? value.toLowerCase() : '';
  return lower === 'close' || lower === 'keep-alive' || lower === 'upgrade';
}

/**
 * Removes the upstream's hop-by-hop response headers (`Connection`, the headers it names,
 * `Keep-Alive`, `Proxy-Connection`): they describe the upstream connection, not the client's,
 * whose `Connection` is set from the client's request afterwards. Upgrades are left alone.
 */
export function removeResponseHopByHop(headers: IncomingHttpHeaders): void {
  // Set to undefined, not deleted: http-proxy-3 skips undefined values when it copies the headers,
  // and `delete` would turn every response's header object into a slow dictionary.
  const connection = headers.connection;
  if (connection !== undefined) {
    if (!isStandardToken(connection)) {
      for (const token of connection.split(',')) {
        const name = token.trim().toLowerCase();
        if (name !== '' && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade')
          headers[name] = undefined;
      }
    }
    headers.connection = undefined;
  }
  if (headers['keep-alive'] !== undefined) headers['keep-alive'] = undefined;
  if (headers['proxy-connection'] !== undefined) headers['proxy-connection'] = undefined;
}
