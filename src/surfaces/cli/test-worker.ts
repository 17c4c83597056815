import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerJob, WorkerMessage } from './test-parallel.js';
import { loadTestFilter, runRange } from './test-range.js';

/**
 * A worker of `portcullis test --jobs N`: loads the filter from the command line's spec and
 * options (its own, with its own DNS cache), reads its byte range and posts the partial report
 * with the sessions it held at the range's start and end. See `test-parallel.ts`.
 */

const job = workerData as WorkerJob;
const port = parentPort as NonNullable<typeof parentPort>;
const post = (message: WorkerMessage) => port.postMessage(message);

const loaded = loadTestFilter(job.spec, job.filterOptions, {
  onDnsWarning: (name, ips) => post({ type: 'warning', name, ips }),
});
let unreported = 0;
const result = await runRange(loaded, job.range, (bytes) => {
  unreported += bytes;
  if (unreported >= 8 * 1024 * 1024) {
    post({ type: 'progress', bytes: unreported });
    unreported = 0;
  }
});
if (unreported > 0) post({ type: 'progress', bytes: unreported });
post({ type: 'done', result });
