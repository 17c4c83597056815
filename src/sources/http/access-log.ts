import { statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, resolve } from 'node:path';
import pino from 'pino';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';

/**
 * The access log: one line per HTTP exchange, in the combined log format that nginx and Apache
 * write (and every log tool reads) or as JSON lines. Log jails read it (`filter:
 * portcullis-access`), so nothing a client sends may forge a line: in the combined format `"`,
 * `\`, control characters and non-ASCII bytes of every client-supplied field are written as
 * `\xHH` (as nginx does); JSON strings are escaped by JSON itself.
 *
 * Writes are buffered (pino's sonic-boom: a write is issued once 4 KiB are pending or
 * `flushIntervalMs` has passed) and the file is reopened in place by `reopen()` (SIGUSR1 in
 * `portcullis run`), for logrotate's `create` mode.
 */

/** What one line says. */
export interface AccessLogEntry {
  /** Canonical client address; `null` when it could not be known (written `-`). */
  ip: string | null;
  /** When the exchange ended, ms since the epoch. */
  timeMs: number;
  /** `-` for a request that never parsed (garbage, too large, too slow). */
  method: string;
  /** The request target as received. */
  url: string;
  /** `HTTP/1.1`. */
  protocol: string;
  /** Response status; 0 when the client went away before one was sent. */
  status: number;
  /** Bytes written to the client for this exchange, headers included (nginx's `$bytes_sent`). */
  bytes: number;
  referer: string;
  userAgent: string;
  /** The `Host` header as sent; `''` when absent. */
  host: string;
  /** From the request to the end of the response, ms. */
  durationMs: number;
}

export type AccessLogFormat = 'combined' | 'json';

export interface AccessLogOptions {
  /**
   * The file; created when missing, appended to otherwise. Its directory must exist: a typo must
   * not grow a directory tree nobody reads (nor logrotate rotates).
   */
  path: string;
  /** Default `combined`. */
  format?: AccessLogFormat;
  /** Pending lines are written at least this often, ms. Default 1000. */
  flushIntervalMs?: number;
  /**
   * Lines pending while the disk does not keep up, bytes; past it new lines are dropped (and
   * counted) instead of growing memory. Default 16 MiB.
   */
  maxBufferBytes?: number;
}

export interface AccessLogStats {
  /** Lines handed to the writer. */
  lines: number;
  /** Lines dropped because the buffer was full. */
  dropped: number;
  /** Write or reopen errors (each also reported to `onError`). */
  errors: number;
  reopens: number;
}

/** An open access log. */
export interface AccessLog {
  readonly path: string;
  readonly format: AccessLogFormat;
  /** Appends one line (buffered). */
  write(entry: AccessLogEntry): void;
  /**
   * Logs the exchange of `req`/`res` once the response closes (finished or aborted). `ip` is the
   * client as judged; `url` defaults to `req.url` (Express passes `req.originalUrl`).
   */
  track(req: IncomingMessage, res: ServerResponse, ip: string | null, url?: string): void;
  /** Writes what is pending now. */
  flush(): Promise<void>;
  /** Writes what is pending to the old file, then opens `path` again (after logrotate moved it). */
  reopen(): Promise<void>;
  /** Flushes and closes the file. Idempotent; later writes are ignored. */
  close(): Promise<void>;
  readonly stats: Readonly<AccessLogStats>;
}

/** Told about write errors (disk full, permission lost); lines keep being buffered. */
export type AccessLogErrorHandler = (error: Error) => void;

/**
 * Opens (creates, appends to) the access log. Rejects when the file cannot be opened (with
 * `PC_ERR_CONFIG_INVALID` naming the directory when it does not exist), so a misconfigured path
 * stops `portcullis run` at start rather than losing every line.
 */
export async function createAccessLog(
  options: AccessLogOptions,
  onError: AccessLogErrorHandler = () => {},
): Promise<AccessLog> {
  checkDirectory(options.path);
  const destination = pino.destination({
    dest: options.path,
    sync: false,
    mkdir: false,
    append: true,
    minLength: 4096,
    maxLength: options.maxBufferBytes ?? 16 * 1024 * 1024,
    periodicFlush: options.flushIntervalMs ?? 1000,
  });
  await new Promise<void>((resolve, reject) => {
    const onOpenError = (error: Error) => {
      destination.removeListener('ready', onReady);
      reject(error);
    };
    const onReady = () => {
      destination.removeListener('error', onOpenError);
      resolve();
    };
    destination.once('ready', onReady);
    destination.once('error', onOpenError);
  });
  return new FileAccessLog(options, destination, onError);
}

function checkDirectory(path: string): void {
  const directory = dirname(resolve(path));
  let isDirectory: boolean;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return; // EACCES and the like: the open says why
    isDirectory = false;
  }
  if (isDirectory) return;
  throw new PortcullisError(
    ErrorCodes.CONFIG_INVALID,
    `access log ${path}: the directory ${directory} does not exist`,
    { help: `create it (mkdir -p ${directory}) or choose another access_log.path` },
  );
}

type Destination = ReturnType<typeof pino.destination>;

const kStart = Symbol('portcullis.accessLog.start');
type Tracked = ServerResponse & {
  [kStart]?: { log: FileAccessLog; ip: string | null; url: string; at: number; bytes: number };
};

class FileAccessLog implements AccessLog {
  readonly path: string;
  readonly format: AccessLogFormat;
  readonly #destination: Destination;
  readonly #onError: AccessLogErrorHandler;
  readonly #stats: AccessLogStats = { lines: 0, dropped: 0, errors: 0, reopens: 0 };
  readonly #format: (entry: AccessLogEntry) => string;
  #closing: Promise<void> | undefined;

  constructor(options: AccessLogOptions, destination: Destination, onError: AccessLogErrorHandler) {
    this.path = options.path;
    this.format = options.format ?? 'combined';
    this.#format = this.format === 'json' ? formatJsonLine : formatCombined;
    this.#destination = destination;
    this.#onError = onError;
    destination.on('error', (error: Error) => {
      this.#stats.errors++;
      this.#onError(error);
    });
    destination.on('drop', () => {
      this.#stats.dropped++;
    });
  }

  get stats(): Readonly<AccessLogStats> {
    return { ...this.#stats };
  }

  write(entry: AccessLogEntry): void {
    if (this.#closing !== undefined) return;
    this.#stats.lines++;
    this.#destination.write(this.#format(entry));
  }

  track(req: IncomingMessage, res: ServerResponse, ip: string | null, url?: string): void {
    (res as Tracked)[kStart] = {
      log: this,
      ip,
      url: url ?? req.url ?? '/',
      at: performance.now(),
      bytes: req.socket?.bytesWritten ?? 0,
    };
    // `on`, not `once`: 'close' comes once, and `once` would allocate a wrapper per request.
    res.on('close', onResponseClose);
  }

  flush(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    return new Promise((resolve) => {
      this.#destination.flush((error) => {
        if (error) {
          this.#stats.errors++;
          this.#onError(error);
        }
        resolve();
      });
    });
  }

  async reopen(): Promise<void> {
    if (this.#closing !== undefined) return;
    await this.flush();
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#destination.removeListener('ready', done);
        this.#destination.removeListener('error', done);
        resolve();
      };
      this.#destination.once('ready', done);
      this.#destination.once('error', done);
      try {
        this.#destination.reopen();
        this.#stats.reopens++;
      } catch (error) {
        this.#stats.errors++;
        this.#onError(error as Error);
        done();
      }
    });
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const destination = this.#destination;
      destination.once('close', () => resolve());
      // An unwritable file must not hold the shutdown.
      const fallback = setTimeout(() => {
        destination.destroy();
        resolve();
      }, 5000);
      fallback.unref();
      destination.once('close', () => clearTimeout(fallback));
      destination.end();
    });
    return this.#closing;
  }

  entryOf(res: ServerResponse, start: NonNullable<Tracked[typeof kStart]>): AccessLogEntry {
    const req = res.req;
    const headers = req.headers;
    const aborted = !res.writableFinished;
    return {
      ip: start.ip,
      timeMs: Date.now(),
      method: req.method ?? '-',
      url: start.url,
      protocol: `HTTP/${req.httpVersion}`,
      status: aborted && !res.headersSent ? 0 : res.statusCode,
      bytes: Math.max(0, (req.socket?.bytesWritten ?? start.bytes) - start.bytes),
      referer: headers.referer ?? '',
      userAgent: headers['user-agent'] ?? '',
      host: headers.host ?? '',
      durationMs: performance.now() - start.at,
    };
  }
}

/** A shared listener (no closure per request): the response carries what the line needs. */
function onResponseClose(this: ServerResponse): void {
  const start = (this as Tracked)[kStart];
  if (start === undefined) return;
  (this as Tracked)[kStart] = undefined;
  start.log.write(start.log.entryOf(this, start));
}

/**
 * A connect/Express-style middleware that logs every exchange to `log`. `clientIp` names the
 * client (pass `pipeline.clientIp.bind(pipeline)` so the log agrees with the jails). Put it
 * first, before the portcullis middleware, so refused requests are logged too.
 */
export function accessLogMiddleware(
  log: AccessLog,
  clientIp: (req: IncomingMessage) => string | null,
): (req: IncomingMessage & { originalUrl?: string }, res: ServerResponse, next: () => void) => void {
  return function portcullisAccessLog(req, res, next) {
    log.track(req, res, clientIp(req), req.originalUrl ?? req.url);
    next();
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let cachedSecond = -1;
let cachedDate = '';

/** `25/Nov/2026:12:00:01 +0000` in the host's time zone, as nginx writes `$time_local`. */
export function formatLogDate(timeMs: number): string {
  const second = Math.floor(timeMs / 1000);
  if (second === cachedSecond) return cachedDate;
  const date = new Date(second * 1000);
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  cachedDate =
    `${pad(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}:` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
  cachedSecond = second;
  return cachedDate;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * One line of the combined log format, newline included:
 * `192.0.2.7 - - [25/Nov/2026:12:00:01 +0000] "GET /x HTTP/1.1" 404 153 "-" "curl/8.0"`.
 */
export function formatCombined(entry: AccessLogEntry): string {
  const request =
    entry.method === '-'
      ? '-'
      : `${escapeLogField(entry.method)} ${escapeLogField(entry.url)} ${escapeLogField(entry.protocol)}`;
  return (
    `${entry.ip ?? '-'} - - [${formatLogDate(entry.timeMs)}] "${request}" ${entry.status} ${entry.bytes} ` +
    `"${entry.referer === '' ? '-' : escapeLogField(entry.referer)}" "${entry.userAgent === '' ? '-' : escapeLogField(entry.userAgent)}"\n`
  );
}

/**
 * One JSON object per line; `time` and `ip` come first (the `portcullis-access` filter relies on
 * it). Strings are escaped by JSON, so a quote or newline sent by a client stays inside its field.
 */
export function formatJsonLine(entry: AccessLogEntry): string {
  return `${JSON.stringify({
    time: new Date(entry.timeMs).toISOString(),
    ip: entry.ip ?? '-',
    method: entry.method,
    url: entry.url,
    protocol: entry.protocol,
    status: entry.status,
    bytes: entry.bytes,
    referer: entry.referer,
    user_agent: entry.userAgent,
    host: entry.host,
    duration_ms: Math.round(entry.durationMs * 1000) / 1000,
  })}\n`;
}

const HEX = '0123456789ABCDEF';

/**
 * Escapes a client-supplied field for the combined format as nginx does: `"`, `\`, control
 * characters, DEL and every non-ASCII byte become `\xHH` (UTF-8 bytes for characters above
 * U+00FF). The result never contains a quote, a backslash that is not an escape, or a newline.
 */
export function escapeLogField(text: string): string {
  let i = 0;
  const length = text.length;
  for (; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break;
  }
  if (i === length) return text;
  let out = text.slice(0, i);
  for (; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) {
      out += text[i];
    } else if (c <= 0xff) {
      out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
    } else {
      // Beyond Latin-1 (not from Node's HTTP parser, which reads headers as Latin-1): UTF-8 bytes.
      const code = text.codePointAt(i) as number;
      if (code > 0xffff) i++;
      for (const byte of Buffer.from(String.fromCodePoint(code), 'utf8')) {
        out += `\\x${HEX[byte >> 4]}${HEX[byte & 15]}`;
      }
    }
  }
  return out;
}
