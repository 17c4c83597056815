import { DeliveryError } from './notifier.js';

/** One HTTP POST of a notification. */
export interface HttpPost {
  url: string;
  headers: Readonly<Record<string, string>>;
  body: string;
  timeoutMs: number;
}

/** `Retry-After` (seconds, or an HTTP date) in ms; `undefined` when absent or unreadable. Capped at 1 h. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const text = header.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - nowMs;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), 3_600_000);
}

/**
 * POSTs with Node's `fetch`, bounded by `timeoutMs` (`AbortSignal.timeout`). Resolves on a 2xx.
 * Throws a {@link DeliveryError}: retryable after a network error, a timeout, a 5xx or a 429
 * (with its `Retry-After`); not retryable after any other status (a 4xx will not get better;
 * a redirect is not followed: the URL should be the final one). Messages name the status, never
 * the URL (its path is often the secret).
 */
export async function post(request: HttpPost): Promise<void> {
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(request.timeoutMs),
    });
  } catch (error) {
    const name = (error as Error).name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    const cause = (error as { cause?: { code?: string } }).cause;
    throw new DeliveryError(
      timedOut ? `no answer within ${request.timeoutMs} ms` : `request failed (${cause?.code ?? name})`,
      { retryable: true },
    );
  }
  // Read the body so the connection can be reused; what it says goes (shortened) into the error.
  const text = await response.text().catch(() => '');
  if (response.ok) return;
  const detail = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  const message = `HTTP ${response.status}${detail === '' ? '' : `: ${detail}`}`;
  if (response.status === 429)
    throw new DeliveryError(message, {
      retryable: true,
      status: 429,
      retryAfterMs: retryAfterMs(response.headers.get('retry-after'), Date.now()),
    });
  throw new DeliveryError(message, { retryable: response.status >= 500, status: response.status });
}
