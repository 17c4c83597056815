import { availableParallelism } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { SessionSnapshot } from '../../detection/filters/regex/sessions.js';
import { LogTestCollector } from './log-test-report.js';
import type { ByteRange } from './test-cut.js';
import type { RangeJob, RangeResult, TestFilter, TestFilterOptions, TestFilterSpec } from './test-range.js';

export {
  type ByteRange,
  cutTarget,
  lineStartAtOrAfter,
  PARALLEL_MIN_BYTES,
  PIECE_MIN_BYTES,
  planPieces,
  planRanges,
  WARMUP_BYTES,
  warmUpStart,
} from './test-cut.js';

/**
 * `portcullis test --jobs N` on a big file: the file is cut into pieces at line starts, the main
 * thread and N - 1 worker threads (each with its own filter loaded from the same command line)
 * take the next piece not yet taken whenever they are free, and the partial reports are merged
 * in the file's order.
 *
 * A filter without multi-line sessions judges each line alone: any cut between lines gives what
 * one pass gives, so the file is cut into many pieces, big first and small last (`planPieces`):
 * a thread that started late (a worker loads its modules and compiles its filter first) or runs
 * slower (a busy machine) takes fewer, and all finish together.
 *
 * A filter with sessions (sshd) remembers earlier lines, and a session can cross a cut: the file
 * is cut into N ranges (`planRanges`), thread k reads range k, and first feeds its filter the
 * {@link WARMUP_BYTES} before it (without counting them) and says which sessions it then holds;
 * the range before it says which it ended with. Equal (deep, order included): the range saw what
 * one pass would have. Different: the range is read again in the main thread from the previous
 * range's end state, and counted in `reruns`. A piece whose worker failed is read again there too.
 * Either way the report is the one `--jobs 1` gives (apart from timings and `jobs`).
 */

/** `--jobs` default: one per core, at most four. */
export const DEFAULT_JOBS = Math.min(availableParallelism(), 4);

/** The two ways of cutting a file; a thread reads its filter's. */
export interface PiecePlans {
  /** For filters without sessions. */
  plain: ByteRange[];
  /** For filters with sessions. */
  sessions: ByteRange[];
}

/** What a worker is given (structured-clone data; `next` is shared). */
export interface WorkerJob {
  spec: TestFilterSpec;
  filterOptions: TestFilterOptions;
  base: RangeBase;
  plans: PiecePlans;
  /** One Int32: the index of the next piece to take (`Atomics.add`). */
  next: SharedArrayBuffer;
  /** This worker's number (1 to jobs - 1). */
  thread: number;
}

type RangeBase = Omit<RangeJob, 'start' | 'end' | 'warmFrom'>;

/** What a worker posts. */
export type WorkerMessage =
  | { type: 'progress'; bytes: number }
  | { type: 'warning'; name: string; ips: readonly string[] }
  | { type: 'done'; index: number; result: RangeResult };

export interface ParallelRun {
  collector: LogTestCollector;
  jobs: number;
  reruns: number;
}

/** The pieces a filter is read in. */
export function piecesOf(filter: { readonly usesSessions: boolean }, plans: PiecePlans): ByteRange[] {
  return filter.usesSessions ? plans.sessions : plans.plain;
}

/**
 * Reads the pieces of thread `thread` (0: the main thread): with sessions its own range (piece
 * `thread`, so which thread reads which range, and so when a range is read again, does not depend
 * on timing); without, the next piece free in `next` until none is left.
 */
export async function takePieces(
  filter: { readonly usesSessions: boolean },
  plans: PiecePlans,
  thread: number,
  next: SharedArrayBuffer,
  read: (index: number) => Promise<void>,
): Promise<void> {
  if (filter.usesSessions) {
    if (thread < plans.sessions.length) await read(thread);
    return;
  }
  const count = plans.plain.length;
  const counter = new Int32Array(next);
  for (let k = Atomics.add(counter, 0, 1); k < count; k = Atomics.add(counter, 0, 1)) await read(k);
}

/** The job of piece `index`: warmed up from the previous piece's start (with sessions only). */
export function pieceJob(base: RangeBase, pieces: readonly ByteRange[], index: number): RangeJob {
  const piece = pieces[index] as ByteRange;
  return { ...base, start: piece.start, end: piece.end, warmFrom: pieces[index - 1]?.start ?? piece.start };
}

/**
 * Reads the file's pieces in this thread and `jobs - 1` workers and merges their reports in
 * order, reading a piece again here when its sessions did not line up or its worker failed. The
 * workers start first: their start-up (modules, filter) overlaps this thread's `loadMain`.
 */
export async function runParallel(
  loadMain: () => Promise<TestFilter>,
  spec: TestFilterSpec,
  filterOptions: TestFilterOptions,
  plans: PiecePlans,
  jobs: number,
  base: RangeBase,
  hooks: {
    onBytes?: (bytes: number) => void;
    onDnsWarning?: (name: string, ips: readonly string[]) => void;
  } = {},
): Promise<ParallelRun> {
  const next = new SharedArrayBuffer(4);
  const results = new Map<number, RangeResult>();
  const workers: Worker[] = [];
  const failures: string[] = [];
  const threads = Math.min(jobs, Math.max(plans.plain.length, plans.sessions.length));
  const finished: Promise<void>[] = [];
  for (let i = 1; i < threads; i++) {
    finished.push(
      startWorker({ spec, filterOptions, base, plans, next, thread: i }, hooks, workers, results).catch(
        (error: unknown) => {
          failures.push((error as Error)?.message ?? String(error));
        },
      ),
    );
  }
  let main: TestFilter;
  let pieces: ByteRange[];
  const { runRange } = await import('./test-range.js');
  try {
    main = await loadMain();
    pieces = piecesOf(main.filter, plans);
    await takePieces(main.filter, plans, 0, next, async (k) => {
      results.set(k, await runRange(main, pieceJob(base, pieces, k), hooks.onBytes));
    });
    await Promise.all(finished);
  } catch (error) {
    // A bad filter, or the file went away: the workers' work is moot.
    await Promise.all(workers.map((worker) => worker.terminate()));
    throw error;
  }
  const collector = new LogTestCollector(main.filter, base.collect);
  let previousEnd: SessionSnapshot | null = null;
  let reruns = 0;
  for (let k = 0; k < pieces.length; k++) {
    let result = results.get(k);
    const linedUp =
      previousEnd === null || !main.filter.usesSessions || result === undefined
        ? true
        : isDeepStrictEqual(result.startState, previousEnd);
    if (result === undefined || !linedUp) {
      const piece = pieces[k] as ByteRange;
      if (result === undefined)
        process.stderr.write(
          `note: the worker reading bytes ${piece.start}-${piece.end} failed (${failures.join('; ') || 'no reason given'}); reading them again in the main thread\n`,
        );
      if (previousEnd === null) main.filter.reset();
      else main.filter.restoreSessions(previousEnd);
      result = await runRange(main, { ...pieceJob(base, pieces, k), warmFrom: piece.start });
      reruns++;
    }
    collector.absorb(result.partial);
    previousEnd = result.endState;
  }
  return { collector, jobs: Math.min(threads, pieces.length), reruns };
}

/**
 * The worker next to this module. From the built files it is `test-worker.js`; from the sources
 * (`node --import tsx`, vitest) it is `test-worker.ts`, which a worker can load only once tsx's
 * hooks are registered in it (they are per thread): a small bootstrap registers them first.
 */
function createWorker(job: WorkerJob): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./test-worker.js', import.meta.url), { workerData: job });
  const script = new URL('./test-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(script)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: job });
}

function startWorker(
  job: WorkerJob,
  hooks: { onBytes?: (bytes: number) => void; onDnsWarning?: (name: string, ips: readonly string[]) => void },
  started: Worker[],
  results: Map<number, RangeResult>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: Error | undefined;
    const worker = createWorker(job);
    started.push(worker);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') hooks.onBytes?.(message.bytes);
      else if (message.type === 'warning') hooks.onDnsWarning?.(message.name, message.ips);
      else results.set(message.index, message.result);
    });
    worker.on('error', (error) => {
      failure = error;
    });
    worker.on('exit', (code) => {
      if (failure !== undefined) reject(failure);
      else if (code !== 0) reject(new Error(`exited with code ${code}`));
      else resolve();
    });
  });
}
