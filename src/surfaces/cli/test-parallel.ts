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
  planRanges,
  WARMUP_BYTES,
  warmUpStart,
} from './test-cut.js';

/**
 * `portcullis test --jobs N` on a big file: the file is cut into N byte ranges at line starts,
 * the main thread reads the first and worker threads the others, each with its own filter loaded
 * from the same command line; the partial reports are merged in order.
 *
 * Exactness. A filter without multi-line sessions judges each line alone: any cut between lines
 * gives what one pass gives. A filter with sessions (sshd) remembers earlier lines, and a session
 * can cross a cut: worker k first feeds its filter the {@link WARMUP_BYTES} before its range
 * (without counting them) and says which sessions it then holds; the range before it says which
 * it ended with. Equal (deep, order included): range k saw what one pass would have. Different:
 * range k is read again in the main thread from the previous range's end state, and counted in
 * `reruns`. Either way the report is the one `--jobs 1` gives (apart from timings and `jobs`).
 */

/** `--jobs` default: one per core, at most four. */
export const DEFAULT_JOBS = Math.min(availableParallelism(), 4);

/** What a worker is given (structured-clone data). */
export interface WorkerJob {
  spec: TestFilterSpec;
  filterOptions: TestFilterOptions;
  range: RangeJob;
}

/** What a worker posts. */
export type WorkerMessage =
  | { type: 'progress'; bytes: number }
  | { type: 'warning'; name: string; ips: readonly string[] }
  | { type: 'done'; result: RangeResult };

export interface ParallelRun {
  collector: LogTestCollector;
  jobs: number;
  reruns: number;
}

/**
 * Reads `ranges` at once (the first in this thread, the others in workers) and merges their
 * reports in order, reading a range again here when its sessions did not line up. The workers
 * start first: their start-up (modules, filter) overlaps this thread's `loadMain`.
 */
export async function runParallel(
  loadMain: () => Promise<TestFilter>,
  spec: TestFilterSpec,
  filterOptions: TestFilterOptions,
  ranges: readonly ByteRange[],
  base: Omit<RangeJob, 'start' | 'end' | 'warmFrom'>,
  hooks: {
    onBytes?: (bytes: number) => void;
    onDnsWarning?: (name: string, ips: readonly string[]) => void;
  } = {},
): Promise<ParallelRun> {
  const jobOf = (k: number): RangeJob => {
    const range = ranges[k] as ByteRange;
    return { ...base, start: range.start, end: range.end, warmFrom: ranges[k - 1]?.start ?? range.start };
  };
  const workers: Worker[] = [];
  const fromWorkers = ranges.slice(1).map((_, i) =>
    startWorker({ spec, filterOptions, range: jobOf(i + 1) }, hooks, workers).then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    ),
  );
  let main: TestFilter;
  let first: RangeResult;
  const { runRange } = await import('./test-range.js');
  try {
    main = await loadMain();
    first = await runRange(main, jobOf(0), hooks.onBytes);
  } catch (error) {
    // A bad filter, or the file went away: the workers' work is moot.
    await Promise.all(workers.map((worker) => worker.terminate()));
    throw error;
  }
  const collector = new LogTestCollector(main.filter, base.collect);
  collector.absorb(first.partial);
  let previousEnd: SessionSnapshot = first.endState;
  let reruns = 0;
  for (let k = 1; k < ranges.length; k++) {
    const range = ranges[k] as ByteRange;
    const outcome = await (fromWorkers[k - 1] as (typeof fromWorkers)[number]);
    let result: RangeResult;
    if (
      outcome.ok &&
      (!main.filter.usesSessions || isDeepStrictEqual(outcome.result.startState, previousEnd))
    ) {
      result = outcome.result;
    } else {
      if (!outcome.ok)
        process.stderr.write(
          `note: the worker reading bytes ${range.start}-${range.end} failed (${(outcome.error as Error)?.message ?? outcome.error}); reading them again in the main thread\n`,
        );
      main.filter.restoreSessions(previousEnd);
      result = await runRange(main, { ...jobOf(k), warmFrom: range.start });
      reruns++;
    }
    collector.absorb(result.partial);
    previousEnd = result.endState;
  }
  return { collector, jobs: ranges.length, reruns };
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
): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    let result: RangeResult | undefined;
    const worker = createWorker(job);
    started.push(worker);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') hooks.onBytes?.(message.bytes);
      else if (message.type === 'warning') hooks.onDnsWarning?.(message.name, message.ips);
      else result = message.result;
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (result !== undefined) resolve(result);
      else reject(new Error(`exited with code ${code} before reporting`));
    });
  });
}
