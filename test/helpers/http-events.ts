import { decodeOnce, type HttpEvent } from '../../src/sources/http/http-event.js';

/** A finished exchange as the pipeline builds it; `url` drives path and query. */
export function event(fields: Partial<HttpEvent> & { url?: string } = {}): HttpEvent {
  const url = fields.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  return {
    ip: '192.0.2.7',
    timeMs: 0,
    method: 'GET',
    host: 'example.com',
    path: decodeOnce(rawPath),
    url,
    query: q === -1 ? '' : url.slice(q + 1),
    status: 200,
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
    referer: '',
    bytesSent: 512,
    durationMs: 3,
    aborted: false,
    headers: {},
    ...fields,
  };
}
