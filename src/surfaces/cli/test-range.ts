import { createReadStream, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ConfigError } from '../../core/errors.js';
import { loadFail2banReference } from '../../detection/filters/fail2ban/reference.js';
import { DnsCache, isDnsName } from '../../detection/filters/regex/dns.js';
import { isBundledName } from '../../detection/filters/regex/filter-definition.js';
import {
  type CompiledLogFilter,
  type LineResult,
  type LogFilterOptions,
  type LogMatch,
  loadLogFilter,
} from '../../detection/filters/regex/log-filter.js';
import type { SessionSnapshot } from '../../detection/filters/regex/sessions.js';
import { LineSplitter } from '../../sources/log/line-splitter.js';
import { type CollectOptions, LogTestCollector, type PartialReport } from './log-test-report.js';
import { warmUpStart } from './test-cut.js';

/**
 * What `portcullis test` does to one stretch of a log, the same in the main thread and in a
 * worker: load the filter from the command line's spec and options, stream the bytes through it,
 * and settle the lines that wait for a DNS lookup (`--usedns`).
 */

/** The filter options `portcullis test` takes from its command line (plain data, for workers). */
export interface TestFilterOptions {
  mode?: string;
  datepattern?: string;
  logtimezone?: string;
  maxLineLength: number;
  usedns?: 'no' | 'warn' | 'yes';
}

/** What the command line named as the filter: a name, a file, one failregex, or a fail2ban reference. */
export type TestFilterSpec = string | Record<string, unknown>;

export interface TestFilter {
  filter: CompiledLogFilter;
  late: LateVerdicts;
}

const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * A bundled name or an existing file is a filter; anything else is taken as one failregex (as
 * fail2ban-regex does), so `portcullis test auth.log '^Failed .* from <HOST>'` works. `notes`:
 * say on stderr what a fail2ban filter carries over differently (the main thread only).
 */
export function loadTestFilter(
  spec: TestFilterSpec,
  options: TestFilterOptions,
  hooks: { notes?: boolean; onDnsWarning?: (name: string, ips: readonly string[]) => void } = {},
): TestFilter {
  const late = new LateVerdicts();
  const filterOptions: LogFilterOptions = {
    ...options,
    where: 'filter',
    optionsWhere: '-',
    dns: late.cache,
    onResolved: (matches) => late.resolved(matches),
    ...(hooks.onDnsWarning === undefined ? {} : { onDnsWarning: hooks.onDnsWarning }),
  };
  try {
    let filter: CompiledLogFilter;
    if (typeof spec !== 'string') {
      if (hooks.notes === true) {
        const read = loadFail2banReference(spec, { mode: options.mode, where: 'filter' });
        for (const note of read.notes) process.stderr.write(`note: ${read.file}: ${note}\n`);
      }
      filter = loadLogFilter(spec, filterOptions);
    } else if (isBundledName(spec) || existsSync(spec)) filter = loadLogFilter(spec, filterOptions);
    else filter = loadLogFilter({ failregex: [spec] }, filterOptions);
    late.filter = filter;
    return { filter, late };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Option problems read "-.mode: ..." here: show them as command-line options.
    throw new ConfigError(error.problems.map((p) => p.replace(/^-\.(\w+):/, '--$1:')));
  }
}

type Verdict = (result: LineResult) => void;

/**
 * The verdicts of lines that waited for DNS, each given to its own line. A name (`usedns`): the
 * filter hands the failures of a name that resolved to `onResolved` from a reaction on the
 * cache's one in-flight lookup of that name; a reaction added right after it, for the same line,
 * runs next and takes them (none: the name did not resolve, a missed line with a bad host, as a
 * cached failure gives). `ignorerdns` (an address being checked): failures arrive per address in
 * the order the lines were read; one that never arrives was a verified crawler (ignored).
 */
export class LateVerdicts {
  readonly cache = new DnsCache();
  filter: CompiledLogFilter | undefined;
  #last: LogMatch[] | undefined;
  readonly #waiting = new Set<Promise<void>>();
  readonly #byAddress = new Map<string, { result: LineResult; verdict: Verdict | null }[]>();

  resolved(matches: LogMatch[]): void {
    const first = matches[0];
    if (first === undefined) return;
    if (first.fields.dns !== undefined) {
      this.#last = matches;
      return;
    }
    const queue = this.#byAddress.get(first.ip);
    const entry = queue?.shift();
    if (queue?.length === 0) this.#byAddress.delete(first.ip);
    entry?.verdict?.({ ...without(entry.result), kind: 'match', matches });
  }

  /** `result` is waiting (`resolving`); `verdict` (null: a line not counted) receives its outcome. */
  track(result: LineResult, verdict: Verdict | null): void {
    const name = result.resolving as string;
    if (!isDnsName(name)) {
      const queue = this.#byAddress.get(name) ?? [];
      if (queue.length === 0) this.#byAddress.set(name, queue);
      queue.push({ result, verdict });
      return;
    }
    const done: Promise<void> = this.cache.resolve(name).then(() => {
      this.#waiting.delete(done);
      const matches = this.#last;
      this.#last = undefined;
      verdict?.(
        matches === undefined
          ? { ...without(result), kind: 'missed', matches: [], badHost: name }
          : { ...without(result), kind: 'match', matches },
      );
    });
    this.#waiting.add(done);
  }

  /** Waits for every lookup; lines still waiting then were verified crawlers. */
  async settled(): Promise<void> {
    await this.filter?.settled();
    while (this.#waiting.size > 0) await Promise.all(this.#waiting);
    for (const queue of this.#byAddress.values())
      for (const { result, verdict } of queue)
        verdict?.({ ...without(result), kind: 'ignored', matches: [] });
    this.#byAddress.clear();
  }
}

/** A waiting line's result without its waiting marks. */
function without(result: LineResult): LineResult {
  const { resolving: _resolving, ...rest } = result;
  return rest;
}

/**
 * One stretch of a log: `[start, end)` is counted. For a filter with sessions, the bytes from
 * {@link warmUpStart}`(warmFrom, start)` to `start` are first fed to it, uncounted (`warmFrom`:
 * the previous range's start; `start` for none).
 */
export interface RangeJob {
  path: string;
  start: number;
  end: number;
  warmFrom: number;
  maxLineLength: number;
  collect: CollectOptions;
}

export interface RangeResult {
  partial: PartialReport;
  /** Sessions when counting began (after the warm-up). */
  startState: SessionSnapshot;
  /** Sessions after the range's last line. */
  endState: SessionSnapshot;
}

/** Streams one range of a file through the filter (bounded memory) and counts what it found. */
export async function runRange(
  { filter, late }: TestFilter,
  job: RangeJob,
  onBytes?: (bytes: number) => void,
): Promise<RangeResult> {
  const warmStart =
    filter.usesSessions && job.warmFrom < job.start
      ? await warmUpStart(job.path, job.warmFrom, job.start)
      : job.start;
  if (warmStart < job.start) {
    await streamLines(job.path, warmStart, job.start, job.maxLineLength, (line) => {
      const result = filter.processLine(line);
      if (result.resolving !== undefined) late.track(result, null);
    });
  }
  const startState = filter.sessionState();
  const collector = new LogTestCollector(filter, job.collect);
  const truncated = await streamLines(
    job.path,
    job.start,
    job.end,
    job.maxLineLength,
    (line) => {
      const result = filter.processLine(line);
      const pending = collector.add(line, result);
      if (pending !== undefined) late.track(result, (verdict) => collector.settle(pending, verdict));
    },
    onBytes,
  );
  const endState = filter.sessionState();
  await late.settled();
  collector.truncated = truncated;
  return { partial: collector.partial(), startState, endState };
}

/** Feeds the lines of `[start, end)` to `each`; returns how many were cut to the length limit. */
export function streamLines(
  path: string,
  start: number,
  end: number,
  maxLineLength: number,
  each: (line: string) => void,
  onBytes?: (bytes: number) => void,
): Promise<number> {
  return feedLines(readRange(path, start, end), maxLineLength, each, onBytes);
}

/**
 * The bytes of `[start, end)` of a file (`end` Infinity: to its end; 0 to Infinity also reads a
 * pipe or a FIFO), a chunk at a time, the next chunk read while the caller works through the
 * current one. Two buffers take turns: a chunk is valid until the caller asks for the next one
 * (LineSplitter keeps nothing of it). A stream (`createReadStream`) asks for the next chunk only
 * once the caller is done with this one, in a fresh buffer each time: the thread waited on every
 * read, and each 1 MiB buffer was new memory.
 */
export async function* readRange(path: string, start: number, end: number): AsyncGenerator<Buffer> {
  if (end <= start) return;
  const file = await open(path, 'r');
  let next: Promise<{ bytesRead: number; buffer: Buffer }> | null = null;
  try {
    const buffers = [Buffer.allocUnsafeSlow(READ_CHUNK_BYTES), Buffer.allocUnsafeSlow(READ_CHUNK_BYTES)];
    let turn = 0;
    let at = start;
    // The whole of it from the start is read on from where the last read stopped (no position):
    // a pipe or a FIFO (`portcullis test <(zcat auth.log.gz) sshd`) cannot seek.
    const whole = start === 0 && end === Number.POSITIVE_INFINITY;
    const readInto = (buffer: Buffer) =>
      at < end ? file.read(buffer, 0, Math.min(READ_CHUNK_BYTES, end - at), whole ? null : at) : null;
    next = readInto(buffers[turn] as Buffer);
    while (next !== null) {
      const { bytesRead, buffer } = await next;
      if (bytesRead === 0) return; // the file is shorter than it was
      at += bytesRead;
      turn ^= 1;
      next = readInto(buffers[turn] as Buffer);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    // Left early (the caller stopped): the read under way finishes before the file closes.
    await next?.catch(() => undefined);
    await file.close();
  }
}

/**
 * The text of a gzip file (every member of it), a chunk at a time; `source` is its path or its
 * bytes. The streams are made when the reading starts and read at once: a gunzip that fails (a
 * file cut short) before anyone listens would throw its error out of the process. A read error
 * ends the text with that error.
 */
export async function* gunzipped(source: string | AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const compressed: Readable = typeof source === 'string' ? createReadStream(source) : Readable.from(source);
  const gunzip = createGunzip();
  compressed.on('error', (error) => gunzip.destroy(error));
  compressed.pipe(gunzip);
  try {
    yield* gunzip;
  } finally {
    compressed.destroy();
  }
}

/** Bytes enough to tell every compressed format `portcullis test` knows (xz's magic is 6). */
const SNIFF_BYTES = 6;

/**
 * A stream that cannot be looked at before it is read (standard input, a pipe, a FIFO: what
 * `zcat`, `<(...)` or `journalctl |` hand over), told by its first bytes: `isGzip(head)` says
 * whether it is gzip (read through gunzip, those bytes included) or throws to refuse it; anything
 * else is passed on as it is. The head's chunks are copied, and every chunk given to gunzip: a
 * source may reuse its buffers (readRange does).
 */
export async function* sniffed(
  input: AsyncIterable<Buffer>,
  isGzip: (head: Buffer) => boolean,
): AsyncGenerator<Buffer> {
  const chunks = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let length = 0;
  let ended = false;
  try {
    while (length < SNIFF_BYTES) {
      const next = await chunks.next();
      if (next.done === true) {
        ended = true;
        break;
      }
      head.push(Buffer.from(next.value));
      length += next.value.length;
    }
    // `copy`: for gunzip, which may hold a chunk while the next is read (into the same buffer).
    const whole = async function* (copy: boolean): AsyncGenerator<Buffer> {
      yield* head;
      while (!ended) {
        const next = await chunks.next();
        if (next.done === true) ended = true;
        else yield copy ? Buffer.from(next.value) : next.value;
      }
    };
    const first = head.length === 1 ? (head[0] as Buffer) : Buffer.concat(head, length);
    if (isGzip(first.subarray(0, SNIFF_BYTES))) yield* gunzipped(whole(true));
    else yield* whole(false);
  } finally {
    // Left early (the caller stopped, or the format was refused): the source is let go.
    if (!ended) await chunks.return?.();
  }
}

/** Feeds the lines of a byte stream to `each`; returns how many were cut to the length limit. */
export async function feedLines(
  input: AsyncIterable<Buffer>,
  maxLineLength: number,
  each: (line: string) => void,
  onBytes?: (bytes: number) => void,
): Promise<number> {
  const splitter = new LineSplitter(maxLineLength);
  for await (const chunk of input) {
    splitter.forEachLine(chunk, each);
    onBytes?.(chunk.length);
  }
  const last = splitter.flush();
  if (last !== undefined) each(last);
  return splitter.truncatedLines;
}
