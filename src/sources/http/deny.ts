import type { ServerResponse } from 'node:http';

/** Why a request is refused before it reaches the application. */
export interface Denial {
  /** `banned`: the client is in the ban table; `rate`: it exceeded a rate jail's rate. */
  reason: 'banned' | 'rate';
  /** Status to answer with: `http.deny.status` (403) for a ban, 429 for a rate. */
  status: number;
  /** Seconds until the client may come back; `undefined` for a permanent ban. */
  retryAfterS: number | undefined;
  /** The jail that banned or whose rate was exceeded; `undefined` for a ban with no table entry (store outage, `on_store_error: deny`). */
  jail: string | undefined;
}

/** A prepared response body. */
export interface DenyResponse {
  status: number;
  body: string;
  contentType: string;
}

export const RATE_LIMITED_RESPONSE: DenyResponse = Object.freeze({
  status: 429,
  body: 'Too Many Requests\n',
  contentType: 'text/plain; charset=utf-8',
});

/** Writes a refusal: status, `Retry-After` when known, `Cache-Control: no-store`, the body. */
export function writeDenial(res: ServerResponse, denial: Denial, response: DenyResponse): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = denial.status;
  res.setHeader('Content-Type', response.contentType);
  res.setHeader('Content-Length', Buffer.byteLength(response.body));
  res.setHeader('Cache-Control', 'no-store');
  if (denial.retryAfterS !== undefined) res.setHeader('Retry-After', String(denial.retryAfterS));
  res.end(response.body);
}
