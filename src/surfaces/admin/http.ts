import type { IncomingMessage, ServerResponse } from 'node:http';

/** Small helpers of the admin listener: JSON answers, errors with codes, a bounded body reader. */

/** Stable error codes of the admin API (the `error.code` of every non-2xx JSON answer). */
export type AdminErrorCode =
  | 'unauthorized'
  | 'bad_token'
  | 'too_many_auth_failures'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'bad_json'
  | 'bad_request'
  | 'bad_target'
  | 'unknown_jail'
  | 'not_banned'
  | 'too_many_streams'
  | 'not_ready'
  | 'misdirected_request'
  | 'internal';

/** An error answer: thrown by handlers, written by the server. */
export class AdminHttpError extends Error {
  readonly status: number;
  readonly code: AdminErrorCode;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: AdminErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'AdminHttpError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Headers on every answer: nothing is cached, nothing is sniffed, nothing is framed. */
export const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...COMMON_HEADERS,
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: AdminHttpError): void {
  sendJson(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
}

/**
 * Reads a JSON request body of at most `limit` bytes. Rejects with 413 past it (before reading
 * when Content-Length says so), 415 for a declared type other than JSON, 400 for bad JSON.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new AdminHttpError(
      415,
      'unsupported_media_type',
      `expected Content-Type: application/json, got ${type}`,
    );
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '')
    throw new AdminHttpError(400, 'bad_json', 'expected a JSON object in the request body');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AdminHttpError(400, 'bad_json', `the request body is not JSON: ${(error as Error).message}`);
  }
}

function tooLarge(limit: number): AdminHttpError {
  // The rest of the body is not read: the connection is closed after the answer.
  return new AdminHttpError(413, 'payload_too_large', `the request body is larger than ${limit} bytes`, {
    Connection: 'close',
  });
}
